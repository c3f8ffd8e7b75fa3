"""BERT optimizers (Google's AdamW, NVIDIA's LAMB), gradient clipping, loss scaling.

Like ``modeling``, this uses no Keras (it must run unchanged on TensorFlow 2.15
and 2.21) and only ops that compile inside ``tf.function(jit_compile=True)``:
state lives in float32 ``tf.Variable``s and every decision on a tensor value is
a ``tf.where`` or ``tf.cond``, never Python control flow.

A training step (see ``training``) is, in order::

    scaled_loss = loss_scale.scale(loss)            # float16 only
    grads = loss_scale.unscale(tape.gradient(...))  # float16 only
    # (Horovod: allreduce grads here, before the finiteness check, so all
    #  workers agree on it)
    grads, global_norm = clip_by_global_norm(grads, 1.0)
    finite = tf.math.is_finite(global_norm)         # any NaN/Inf gradient makes the norm so
    loss_scale.adjust(finite)                       # float16 only
    optimizer.apply_gradients(grads, learning_rate, should_apply=finite, step=global_step)
    global_step += finite

(Checking the global norm, which clipping computes anyway, instead of every
gradient with ``tf.math.is_finite`` saves a memory-bound pass over all of
them. A norm whose square overflows float32 also counts as non-finite: such a
step would be garbage anyway.)
"""

import dataclasses
import re

import tensorflow as tf

# Google's default exclusions: LayerNorm parameters and biases are not decayed.
DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")


class _AdamStyleOptimizer(tf.Module):
    """What AdamWeightDecay and Lamb share: slots, entries, decay rule, apply_gradients.

    Subclasses give ``_update_for(entry, next_m, next_v, context)``, the update
    that is multiplied by the learning rate and subtracted from the variable;
    ``context`` is what ``_step_context(step)`` computed once for the step.
    The defaults are Google's and NVIDIA's (the same for both).
    """

    MODULE_NAME = "adam_style_optimizer"
    # Whether updates are scaled by a trust ratio (LAMB's layer adaptation).
    ADAPTS_LAYERS = False

    def __init__(
        self,
        variables_by_name,
        *,
        weight_decay_rate=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=DEFAULT_EXCLUDE_FROM_WEIGHT_DECAY,
        exclude_from_layer_adaptation=(),
    ):
        super().__init__(name=self.MODULE_NAME)
        self.weight_decay_rate = float(weight_decay_rate)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.exclude_from_weight_decay = tuple(exclude_from_weight_decay)
        self.exclude_from_layer_adaptation = tuple(exclude_from_layer_adaptation)
        slots = {}
        entries = []
        for name, param in variables_by_name.items():
            # Google's (and NVIDIA's, also for LAMB) checkpoint names.
            for slot in ("adam_m", "adam_v"):
                slots[f"{name}/{slot}"] = tf.Variable(
                    tf.zeros(param.shape, tf.float32), name=f"{name}/{slot}", trainable=False
                )
            entries.append(
                _Entry(
                    param=param,
                    m=slots[f"{name}/adam_m"],
                    v=slots[f"{name}/adam_v"],
                    # Decided once, from the name: nothing to decide per step.
                    decay=bool(self.weight_decay_rate)
                    and not _matches_any(name, self.exclude_from_weight_decay),
                    layer_adaptation=self.ADAPTS_LAYERS
                    and not _matches_any(name, self.exclude_from_layer_adaptation),
                )
            )
        self.slots_by_name = slots
        # Plain objects, so neither tf.Module.variables nor a tf.train.Checkpoint
        # of the optimizer picks up the model's variables a second time.
        self._entries = _Entries(entries)

    def apply_gradients(self, grads, learning_rate, *, should_apply=None, step=None):
        """Updates every variable from its gradient.

        Args:
          grads: list aligned with ``variables_by_name.values()``; a None
            entry leaves that variable and its slots untouched (as Google's
            optimizer skips variables without a gradient).
          learning_rate: float or float32 scalar tensor.
          should_apply: optional bool scalar tensor. When False, nothing
            changes (a step whose gradients are not finite is skipped).
          step: int64 scalar, the global step before this update (the number
            of updates applied so far). Lamb needs it for its bias
            correction; AdamWeightDecay ignores it.
        """
        entries = self._entries.items
        if len(grads) != len(entries):
            raise ValueError(f"got {len(grads)} gradients for {len(entries)} variables")
        learning_rate = tf.cast(learning_rate, tf.float32)
        context = self._step_context(step)
        if should_apply is None:
            self._update(grads, entries, learning_rate, context)
            return
        # One branch around all updates: a per-element tf.where for every
        # variable and slot cost ~5% of an fp32 CPU step (issue #8).
        tf.cond(should_apply, lambda: self._update(grads, entries, learning_rate, context), lambda: None)

    def _step_context(self, step):
        del step
        return None

    def _update(self, grads, entries, learning_rate, context):
        for grad, entry in zip(grads, entries):
            if grad is None:
                continue
            param, m, v = entry.param, entry.m, entry.v
            grad = tf.cast(tf.convert_to_tensor(grad), tf.float32)
            next_m = self.beta_1 * m + (1.0 - self.beta_1) * grad
            next_v = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
            update = self._update_for(entry, next_m, next_v, context)
            param.assign(param - learning_rate * update)
            m.assign(next_m)
            v.assign(next_v)

    def _with_weight_decay(self, entry, update):
        # Decoupled weight decay: added to the update, not to the gradient.
        if entry.decay:
            update += self.weight_decay_rate * entry.param
        return update


class AdamWeightDecay(_AdamStyleOptimizer):
    """Google's ``AdamWeightDecayOptimizer``: Adam with decoupled weight decay.

    Deliberately the same maths as Google's BERT optimizer, including its
    quirk of having NO bias correction of the moments, so that training
    resumed from a Google or FinBERT checkpoint continues as it would have::

        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        update = m / (sqrt(v) + epsilon)
        update += weight_decay_rate * param     # unless the name is excluded
        param -= learning_rate * update

    The slots are float32 variables in ``self.slots_by_name`` under Google's
    checkpoint names ``<variable name>/adam_m`` and ``<variable name>/adam_v``.
    The optimizer keeps no step counter; the caller owns the global step (the
    ``step`` argument of ``apply_gradients`` is accepted and ignored).
    """

    MODULE_NAME = "adam_weight_decay"

    def _update_for(self, entry, next_m, next_v, context):
        del context  # no bias correction
        return self._with_weight_decay(entry, next_m / (tf.sqrt(next_v) + self.epsilon))


class Lamb(_AdamStyleOptimizer):
    """LAMB (You et al. 2019, arXiv:1904.00962) as NVIDIA's BERT pretraining runs it.

    Facts from NVIDIA's ``LAMBOptimizer`` and ``create_optimizer`` in
    https://github.com/NVIDIA/DeepLearningExamples/blob/master/TensorFlow/LanguageModeling/BERT/optimization.py
    (read at commit 729963dd47e7c8bd462ad10bfac7a7b0b604e6dd), which the seed
    FinBERT run used::

        m = beta_1 * m + (1 - beta_1) * g          # slots named adam_m, adam_v
        v = beta_2 * v + (1 - beta_2) * g**2
        t = step + 1
        update = (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)
        update += weight_decay_rate * param        # unless the name is excluded
        trust = ||param|| / ||update||   if both norms > 0, else 1.0
        param -= learning_rate * trust * update    # norms over the whole tensor

    - Checkpoint slots are ``<name>/adam_m`` and ``<name>/adam_v``, as in AdamW.
    - Moments ARE bias-corrected (NVIDIA PR #395 made t the global step).
    - Weight decay: 0.01, except names matching "LayerNorm", "layer_norm", "bias".
    - Layer adaptation: NVIDIA excludes nothing (biases and LayerNorm get a
      trust ratio too); names matching ``exclude_from_layer_adaptation`` get
      trust 1.0, i.e. a plain AdamW-with-bias-correction update.
    - Trust ratio unclipped, 1.0 when either norm is zero.
    - Defaults: beta_1=0.9, beta_2=0.999, epsilon=1e-6, weight_decay_rate=0.01.

    Unlike the paper, whose trust ratio is phi(||param||) / ||update|| with phi
    a clipping function, NVIDIA (followed here) uses phi(z) = z with no bounds.

    The optimizer keeps no step counter: ``apply_gradients`` needs ``step``,
    the global step before this update, which counts applied (finite) updates
    and so the updates the moments have seen; t = step + 1. The global step is
    checkpointed, so a resumed run continues the bias correction exactly; a
    run that restarts the global step at 0 over carried-over slots restarts
    the correction too.
    """

    MODULE_NAME = "lamb"
    ADAPTS_LAYERS = True

    def _step_context(self, step):
        """The bias corrections, which depend only on the step: once, not per variable."""
        if step is None:
            raise ValueError("Lamb.apply_gradients needs step (the global step) for its bias correction")
        t = tf.cast(step, tf.float32) + 1.0
        return 1.0 - tf.pow(self.beta_1, t), 1.0 - tf.pow(self.beta_2, t)

    def _update_for(self, entry, next_m, next_v, context):
        beta_1_correction, beta_2_correction = context
        update = (next_m / beta_1_correction) / (tf.sqrt(next_v / beta_2_correction) + self.epsilon)
        update = self._with_weight_decay(entry, update)
        if not entry.layer_adaptation:
            return update
        param_norm = tf.norm(entry.param)
        update_norm = tf.norm(update)
        both_positive = tf.logical_and(param_norm > 0.0, update_norm > 0.0)
        # The division is selected away where a norm is zero (no gradient flows here).
        trust_ratio = tf.where(both_positive, param_norm / update_norm, 1.0)
        return trust_ratio * update


OPTIMIZERS = {"adamw": AdamWeightDecay, "lamb": Lamb}


# The optimizer's settings (the schema's training keys of the same names).
HYPERPARAMETERS = ("weight_decay_rate", "beta_1", "beta_2", "epsilon")


def optimizer_from_settings(settings, variables_by_name):
    """The optimizer that ``settings.optimizer`` names, with the run's hyperparameters."""
    hyperparameters = {key: getattr(settings, key) for key in HYPERPARAMETERS}
    return make_optimizer(settings.optimizer, variables_by_name, **hyperparameters)


def make_optimizer(name, variables_by_name, **hyperparameters):
    """Returns the optimizer called ``name`` ("adamw" or "lamb") over the variables."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choices: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](variables_by_name, **hyperparameters)


def _matches_any(name, patterns):
    """Google's exclusion rule: a variable is excluded if any regex searches its name."""
    return any(re.search(pattern, name) for pattern in patterns)


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One variable, its Adam slots, whether it is weight-decayed and (LAMB) layer-adapted."""

    param: tf.Variable
    m: tf.Variable
    v: tf.Variable
    decay: bool
    layer_adaptation: bool = False


@dataclasses.dataclass(frozen=True)
class _Entries:
    """Holds the entries outside tf.Module/Trackable attribute tracking."""

    items: list


def clip_by_global_norm(grads, clip_norm=1.0):
    """Google's clipping: scales all gradients by clip_norm / max(norm, clip_norm).

    None entries stay None. Returns (clipped list, global_norm float32 scalar);
    a non-finite global norm makes every clipped gradient non-finite, which
    the loss scale's check then catches.
    """
    dense = [None if grad is None else tf.convert_to_tensor(grad) for grad in grads]
    clipped, global_norm = tf.clip_by_global_norm(dense, clip_norm)
    return list(clipped), global_norm


class DynamicLossScale(tf.Module):
    """Dynamic loss scaling for float16 training, as Keras' LossScaleOptimizer does it.

    The loss is multiplied by ``loss_scale`` before differentiation so small
    float16 gradients do not underflow; gradients are divided by it after.
    On a step with non-finite gradients the scale halves (not below
    ``min_scale``) and the step should be skipped; after ``growth_interval``
    finite steps in a row it doubles. Both state variables are meant to be
    checkpointed (``self.variables_by_name``) so a resumed run continues with
    the same scale.
    """

    def __init__(self, initial_scale=2.0**15, *, growth_interval=2000, min_scale=1.0):
        super().__init__(name="dynamic_loss_scale")
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        self.loss_scale = tf.Variable(
            float(initial_scale), dtype=tf.float32, trainable=False, name="loss_scale"
        )
        self.loss_scale_good_steps = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="loss_scale_good_steps"
        )
        self.variables_by_name = {
            "loss_scale": self.loss_scale,
            "loss_scale_good_steps": self.loss_scale_good_steps,
        }

    def scale(self, loss):
        """Returns loss * scale, in the loss's dtype."""
        return loss * tf.cast(self.loss_scale, loss.dtype)

    def unscale(self, grads):
        """Returns the gradients divided by the scale; None entries stay None."""
        # With power-of-two scales (the default) multiplying by the inverse is exact.
        inverse = 1.0 / self.loss_scale
        unscaled = []
        for grad in grads:
            if grad is not None:
                grad = tf.convert_to_tensor(grad)
                grad = grad * tf.cast(inverse, grad.dtype)
            unscaled.append(grad)
        return unscaled

    def adjust(self, finite):
        """Halves the scale after a non-finite step, doubles it after growth_interval finite ones."""
        good_steps = self.loss_scale_good_steps + 1
        grow = tf.logical_and(finite, good_steps >= self.growth_interval)
        doubled = self.loss_scale * 2.0
        # Never grow into Inf (it would make every later step overflow).
        grown = tf.where(tf.math.is_finite(doubled), doubled, self.loss_scale)
        halved = tf.maximum(self.loss_scale * 0.5, self.min_scale)
        new_scale = tf.where(finite, tf.where(grow, grown, self.loss_scale), halved)
        new_good_steps = tf.where(
            tf.logical_and(finite, tf.logical_not(grow)),
            good_steps,
            tf.zeros_like(good_steps),
        )
        self.loss_scale.assign(new_scale)
        self.loss_scale_good_steps.assign(new_good_steps)
