"""The training plan: phases cut into segments, one Snakemake job per segment.

A phase trains from ``first_step`` to ``last_step`` (global steps, end
exclusive of nothing: a segment ``(start, end)`` runs the steps that move the
global step from ``start`` to ``end``). Segments of ``segment_steps`` tile the
phase from its first step; the last one may be shorter (FinBERT's phase 1:
0-260k, 260k-520k, 520k-780k, 780k-900k). Each segment's output is the
checkpoint at its end step, so the list of segments is the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Segment:
    """One training job: moves the global step of ``phase`` from start to end."""

    phase: str
    index: int
    start_step: int
    end_step: int

    @property
    def num_steps(self) -> int:
        return self.end_step - self.start_step


def plan_segments(phase: str, first_step: int, last_step: int, segment_steps: int) -> list[Segment]:
    """Cut ``[first_step, last_step)`` into consecutive segments of ``segment_steps``."""
    if first_step < 0:
        raise ConfigError(f"phase {phase}: first_step is {first_step}; expected a step >= 0")
    if last_step <= first_step:
        raise ConfigError(
            f"phase {phase}: last_step is {last_step}; expected a step after first_step {first_step}"
        )
    if segment_steps <= 0:
        raise ConfigError(f"phase {phase}: segment_steps is {segment_steps}; expected a positive number of steps")
    segments = []
    start = first_step
    while start < last_step:
        end = min(start + segment_steps, last_step)
        segments.append(Segment(phase, len(segments), start, end))
        start = end
    return segments


def plan_run(phases: list[dict]) -> list[Segment]:
    """All segments of all phases, in training order; phases must follow each other.

    ``phases`` are config entries with ``name``, ``first_step``, ``last_step`` and
    ``segment_steps``. Phase k+1 must start where phase k ends: the seed's
    phase 2 continues phase 1's global step and optimizer state.
    """
    if not phases:
        raise ConfigError("phases: the list is empty; expected at least one training phase")
    segments: list[Segment] = []
    previous = None
    for phase in phases:
        if previous is not None and phase["first_step"] != previous["last_step"]:
            raise ConfigError(
                f"phases: {phase['name']} starts at first_step {phase['first_step']} but "
                f"{previous['name']} ends at last_step {previous['last_step']}; "
                "expected each phase to start where the previous one ends"
            )
        segments.extend(
            plan_segments(phase["name"], phase["first_step"], phase["last_step"], phase["segment_steps"])
        )
        previous = phase
    return segments


def previous_segment(segments: list[Segment], segment: Segment) -> Segment | None:
    """The segment whose final checkpoint initialises ``segment`` (None for the first)."""
    position = segments.index(segment)
    return segments[position - 1] if position > 0 else None


def find_segment(segments: list[Segment], phase: str, end_step: int) -> Segment:
    """The segment of ``phase`` that ends at ``end_step``."""
    for segment in segments:
        if segment.phase == phase and segment.end_step == end_step:
            return segment
    raise ConfigError(f"no segment of phase {phase} ends at step {end_step}")
