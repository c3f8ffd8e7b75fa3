#!/usr/bin/env python3
"""Sentence splitters on English and Finnish: quality on hand-written cases, and speed.

    python benchmarks/sentence_splitters.py              # everything (~6-7 min on 2 cores)
    python benchmarks/sentence_splitters.py --quick      # no speed runs (< 1 s)
    python benchmarks/sentence_splitters.py --failures   # also print each wrong paragraph

Run it with a Python that has the splitters installed (they are not project
dependencies): ``python -m venv V && V/bin/pip install sentencex blingfire
pysbd segtok syntok``. Each library is imported lazily; one that is missing
is reported as "not installed" and skipped. Nothing is downloaded at run time.

What it measures, per splitter and language:

* quality on the cases below (a paragraph is one line of text; its gold is the
  list of sentences; the paragraph is the gold sentences joined by one space):
  - paragraph accuracy: the share of paragraphs whose sentences (each stripped
    of surrounding whitespace, empty ones dropped) equal the gold exactly;
  - sentence-boundary precision / recall / F1: a boundary is a position
    between two sentences of a paragraph, counted in non-whitespace
    characters so that a splitter that changes whitespace is still scored;
* speed: one core, best of 3 runs, by CPU time of this process (which other
  load on the machine disturbs less) and by wall-clock time, on a larger
  text made by repeating the cases with their numbers changed (6 cases a
  paragraph, paragraphs joined by newlines, ~10 MB = 10^6 bytes of UTF-8);
  the splitter is called once per paragraph, as the corpus stage will call
  it, and only those calls are timed. A splitter slower than 0.5 MB/s on a
  first probe is timed on a smaller prefix (at most ~20 s a run); the size
  used is printed.
* sentencex's behaviour on newlines, language codes, the empty string and
  a very long paragraph without punctuation (time and peak memory, each in a
  fresh process).

``sentencex+merge`` is sentencex plus one step of ours (a piece opening with a
non-ASCII lower-case letter joins the previous one); see docs/sentence-splitting.md.
Results and their reading: docs/sentence-splitting.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from importlib import metadata

# ---------------------------------------------------------------------------
# Test cases: (what it tests, gold sentences). The paragraph is " ".join(gold).
# ---------------------------------------------------------------------------

ENGLISH = [
    ("abbrev Dr./a.m.", ["Dr. Smith arrived at 10 a.m. on Monday.", "He was late again."]),
    ("abbrev Mr./U.S.", ["Mr. Brown has lived in the U.S. since 2010.", "He moved there from Canada."]),
    ("abbrev U.S. ends sentence", ["In 2015 he moved to the U.S.", "He never regretted it."]),
    ("abbrev e.g.", ["Use a simple tool, e.g. a hammer, to fix it.", "Then clean up the mess."]),
    ("abbrev i.e.", ["The results, i.e. the final scores, were published.", "Nobody complained."]),
    ("abbrev etc. mid-sentence", ["We bought apples, pears, oranges, etc. for the party.", "It was fun."]),
    ("abbrev etc. ends sentence", ["They sold bread, milk, cheese, etc.", "The prices were fair."]),
    ("abbrev No.", ["Item No. 5 was missing from the box.", "We ordered another one."]),
    ("abbrev vs.", ["The case was Smith vs. Jones in 1999.", "It became famous."]),
    ("abbrev Prof./Mrs./St.", ["Prof. Adams and Mrs. Lee met at St. Paul's Cathedral.", "They talked for hours."]),
    ("abbrev Ph.D.", ["She earned a Ph.D. in physics in Boston.", "Her thesis was about lasers."]),
    ("abbrev Jan.", ["Version 2.1.3 was released on Jan. 5, 2021.", "It fixed many bugs."]),
    ("abbrev U.K. and U.S.", ["The U.K. and the U.S. signed the deal.", "It took effect immediately."]),
    ("numbers 3.14", ["Pi is approximately 3.14.", "The value of e is about 2.718."]),
    ("numbers time and date", ["The meeting is at 12.30 on 1.5.2020 in room 4.", "Please be on time."]),
    ("numbers percent", ["The economy grew by 3.2% in the second quarter.", "Analysts were surprised."]),
    ("quotes double", ['He said: "Stop."', "Then he walked away."]),
    ("quotes single", ["She said: 'Stop.'", "Then she left the room."]),
    ("quotes question inside", ['"Are you coming?" she asked.', '"Yes," he replied.']),
    ("parentheses", ["The result (see Fig. 3) was clear.", "(This was expected.)", "We continued the work."]),
    ("ellipsis lowercase", ["I waited... and waited.", "Nobody came."]),
    ("ellipsis uppercase", ["He paused for a long time...", "Then he spoke again."]),
    ("question/exclamation", ["Really?!", "That is amazing!", "Who told you?"]),
    ("URL and e-mail", ["Visit https://example.com/docs/index.html for details.",
                        "Then write to john.smith@example.org."]),
    ("URL ends sentence", ["The code is at www.example.com/src.", "It is free to use."]),
    ("initials J. R. R.", ["J. R. R. Tolkien wrote The Hobbit.", "It was published in 1937."]),
    ("initials end sentence", ["The novel was written by George R. R. Martin.", "It became a TV series."]),
    ("lowercase start", ["Apple sold more phones last year.", "iPhone sales grew by ten percent."]),
    ("number start", ["The company was founded in 1998.", "2008 was its best year."]),
    ("no final punctuation", ["This paragraph has no final period"]),
]

FINNISH = [
    ("klo, n., time 12.30", ["Kokous alkaa klo 12.30 ja päättyy n. klo 15.", "Kahvia on tarjolla."]),
    ("ordinal date + year", ["Suomi itsenäistyi 6. joulukuuta 1917.", "Itsenäisyyspäivää vietetään joka vuosi."]),
    ("date 1.5.2020", ["Laki tuli voimaan 1.5.2020 ja sitä muutettiin myöhemmin.", "Muutos koski vain yrityksiä."]),
    ("date ends sentence", ["Hakemukset on jätettävä viimeistään 31.3.2021.", "Myöhästyneitä ei käsitellä."]),
    ("ordinal 24. päivänä", ["Juhannusta vietettiin kesäkuun 24. päivänä.", "Sää oli kaunis."]),
    ("ordinal 5. toukokuuta", ["Tapaaminen on 5. toukokuuta Helsingissä.", "Ilmoittautuminen päättyy 30. huhtikuuta."]),
    ("ordinal 12. kerran", ["Kilpailu järjestettiin nyt 12. kerran.", "Osallistujia oli ennätysmäärä."]),
    ("ordinal + word starting with ä", ["Ehdokas putosi kisasta vasta 3. äänestyskierroksella.",
                                        "Tulos yllätti monet."]),
    ("ordinal then boundary", ["Suomi sijoittui kisoissa 5. ja Ruotsi 7.", "Norja voitti kilpailun."]),
    ("abbrev esim. + lower", ["Pöydällä oli esim. kyniä, papereita ja kirjoja.", "Kaikki olivat sekaisin."]),
    ("abbrev esim. + Upper", ["Monet kaupungit, esim. Tampere ja Turku, ovat kasvaneet nopeasti.",
                             "Kehitys jatkuu todennäköisesti."]),
    ("abbrev ns.", ["Kyseessä on ns. harmaa talous.", "Sitä on vaikea mitata."]),
    ("abbrev ns. + word starting with ä", ["Kyseessä oli ns. äänestäjien kapina.", "Puolue hävisi vaalit."]),
    ("abbrev mm. + Upper", ["Kokoukseen osallistuivat mm. Virtanen ja Korhonen.", "Puheenjohtajana toimi Laine."]),
    ("abbrev n. (noin)", ["Matka kesti n. kolme tuntia.", "Perillä oli kylmä."]),
    ("abbrev jne. ends sentence", ["Kaupasta sai leipää, maitoa, juustoa jne.", "Hinnat olivat kohtuullisia."]),
    ("abbrev jne. mid-sentence", ["Omenat, päärynät, luumut jne. myytiin nopeasti loppuun.",
                                 "Uusi erä tulee huomenna."]),
    ("abbrev ks. in parentheses", ["Lisätietoja on liitteessä (ks. liite 3).", "Liite julkaistaan verkossa."]),
    ("abbrev Ks. starts sentence", ["Ks. myös edellinen luku.", "Siinä asiaa käsitellään tarkemmin."]),
    ("abbrev yms.", ["Laatikossa oli ruuveja, nauloja yms. tarvikkeita.", "Ne lajiteltiin huolellisesti."]),
    ("abbrev tri / prof.", ["Potilaan tutki tri Mäkinen ja luennon piti prof. Lehtonen.", "Sali oli täynnä."]),
    ("abbrev eKr. + Upper", ["Vuonna 44 eKr. Caesar murhattiin Roomassa.", "Murha muutti Rooman historian kulun."]),
    ("abbrev eKr. + lower", ["Rooma perustettiin perimätiedon mukaan vuonna 753 eKr. ja kasvoi nopeasti.",
                            "Siitä tuli valtakunnan keskus."]),
    ("abbrev vrt.", ["Tulos oli heikompi kuin edellisenä vuonna (vrt. taulukko 2).", "Syynä oli taantuma."]),
    ("abbrev ts.", ["Hinnat nousivat 2,5 prosenttia, ts. selvästi ennustettua enemmän.",
                    "Ekonomistit olivat yllättyneitä."]),
    ("quotes ” + lower", ["”Tule heti tänne!” äiti huusi.", "Lapset juoksivat sisään."]),
    ("quotes ” after colon", ["Hän sanoi: ”Lähdetään.”", "Sitten he lähtivät kotiin."]),
    ("guillemets »«", ["»Mitä sinä teet?» kysyi Liisa.", "»En mitään», vastasi Pekka."]),
    ("ellipsis lowercase", ["Hän odotti... ja odotti.", "Kukaan ei tullut."]),
    ("ellipsis uppercase", ["Hän epäröi hetken...", "Sitten hän alkoi puhua."]),
    ("question/exclamation", ["Mitä sinä oikein teet?!", "Lopeta heti!", "Tämä on vaarallista."]),
    ("URL and e-mail", ["Lisätietoja on osoitteessa https://www.example.fi/ohjeet/index.html.",
                        "Voit myös kirjoittaa osoitteeseen etunimi.sukunimi@yliopisto.fi."]),
    ("initials J. R. R.", ["J. R. R. Tolkienin teokset on käännetty suomeksi.", "Tunnetuin suomentaja on Kersti Juva."]),
    ("initials end sentence", ["Kekkosen edeltäjä oli J. K. Paasikivi.", "Hän toimi presidenttinä vuosina 1946–1956."]),
    ("year ends sentence, number start", ["Yritys perustettiin vuonna 1998.", "2000-luvulla se kasvoi nopeasti."]),
    ("lowercase start", ["Uusien puhelimien myynti kasvoi.", "iPhone oli suosituin malli."]),
    ("decimal comma, version", ["Piin likiarvo on 3,14.", "Versio 2.1.3 julkaistiin eilen."]),
    ("time ends sentence", ["Junan piti lähteä klo 8.15.", "Se myöhästyi kuitenkin puoli tuntia."]),
    ("no final punctuation", ["Tämä kappale ei pääty välimerkkiin"]),
]

CASES = {"en": ENGLISH, "fi": FINNISH}

# ---------------------------------------------------------------------------
# Splitters: name -> (package, factory(language) -> (split(paragraph) -> list[str], language note)).
# Imports happen inside the factories.
# ---------------------------------------------------------------------------


def _sentencex(language):
    from sentencex import segment

    return (lambda text: segment(language, text)), language


def _sentencex_merged(language):
    """sentencex as the preparation stage calls it: a piece opening with a non-ASCII lower-case letter
    (ä, ö, å, é, ...) joins the previous one (bert_pretraining.sentences.join_lowercase_continuations)."""
    from sentencex import segment

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    from bert_pretraining.sentences import join_lowercase_continuations

    return (lambda text: join_lowercase_continuations(segment(language, text))), language


def _blingfire(language):
    from blingfire import text_to_sentences

    return (lambda text: text_to_sentences(text).split("\n")), "language-agnostic"


def _pysbd(language):
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    used = language if language in LANGUAGE_CODES else "en"
    segmenter = pysbd.Segmenter(language=used, clean=False)
    note = used if used == language else f"en ({language} unsupported: ValueError)"
    return segmenter.segment, note


def _segtok_single(language):
    from segtok.segmenter import split_single

    return (lambda text: list(split_single(text))), "language-agnostic"


def _segtok_multi(language):
    from segtok.segmenter import split_multi

    return (lambda text: list(split_multi(text))), "language-agnostic"


def _syntok(language):
    from syntok.segmenter import process

    def split(text):
        sentences = []
        for paragraph in process(text):
            for sentence in paragraph:
                last = sentence[-1]
                sentences.append(text[sentence[0].offset:last.offset + len(last.value)])
        return sentences

    return split, "language-agnostic"


SPLITTERS = {
    "sentencex": ("sentencex", _sentencex),
    "sentencex+merge": ("sentencex", _sentencex_merged),
    "blingfire": ("blingfire", _blingfire),
    "pysbd": ("pysbd", _pysbd),
    "segtok split_single": ("segtok", _segtok_single),
    "segtok split_multi": ("segtok", _segtok_multi),
    "syntok": ("syntok", _syntok),
}


def load(name, language):
    """(split, note) or None if the package is missing."""
    package, factory = SPLITTERS[name]
    try:
        metadata.version(package)
        return factory(language)
    except (ImportError, metadata.PackageNotFoundError):
        return None


# ---------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------


def clean(sentences):
    return [s.strip() for s in sentences if s.strip()]


def boundaries(sentences):
    """Positions between sentences, in non-whitespace characters from the paragraph start."""
    out, position = set(), 0
    for sentence in sentences[:-1]:
        position += len(re.sub(r"\s", "", sentence))
        out.add(position)
    return out


def quality(split, cases):
    exact = tp = fp = fn = altered = 0
    failures = []
    for label, gold in cases:
        text = " ".join(gold)
        predicted = clean(split(text))
        if re.sub(r"\s", "", "".join(predicted)) != re.sub(r"\s", "", text):
            altered += 1  # the splitter changed or dropped characters
        if predicted == gold:
            exact += 1
        else:
            failures.append((label, gold, predicted))
        g, p = boundaries(gold), boundaries(predicted)
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "paragraphs": len(cases), "exact": exact, "precision": precision, "recall": recall,
        "f1": f1, "altered": altered, "failures": failures,
    }


# ---------------------------------------------------------------------------
# Speed
# ---------------------------------------------------------------------------


def renumber(text, k):
    """The same text with every digit run replaced by another number of as many digits."""

    def sub(match):
        digits = match.group()
        if len(digits) == 1:
            return str(1 + (int(digits) + k) % 9)
        low = 10 ** (len(digits) - 1)
        return str(low + (int(digits) + k) % (9 * low))

    return re.sub(r"\d+", sub, text)


def big_text(cases, target_bytes, per_paragraph=6, seed=1):
    """Paragraphs of `per_paragraph` renumbered cases each, one a line, ~target_bytes of UTF-8."""
    rng = random.Random(seed)
    texts = [" ".join(gold) for _, gold in cases]
    lines, size, k = [], 0, 0
    while size < target_bytes:
        order = texts[:]
        rng.shuffle(order)
        for i in range(0, len(order) - per_paragraph + 1, per_paragraph):
            k += 1
            line = renumber(" ".join(order[i:i + per_paragraph]), k)
            lines.append(line)
            size += len(line.encode("utf-8")) + 1
            if size >= target_bytes:
                break
    return lines


def run_once(split, lines):
    gc.collect()
    gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            split(line)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        gc.enable()


def speed(split, lines, total_bytes, max_seconds=20.0, probe_bytes=200_000):
    """(MB/s by wall-clock time, MB/s by CPU time, MB timed): each the best of 3 runs."""
    probe, size = [], 0
    for line in lines:
        probe.append(line)
        size += len(line.encode("utf-8")) + 1
        if size >= probe_bytes:
            break
    rate = size / run_once(split, probe)[0]  # bytes/s
    if rate < 0.5e6:
        keep = int(min(total_bytes, rate * max_seconds))
        use, size = [], 0
        for line in lines:
            use.append(line)
            size += len(line.encode("utf-8")) + 1
            if size >= keep:
                break
    else:
        use, size = lines, total_bytes
    runs = [run_once(split, use) for _ in range(3)]
    return size / min(r[0] for r in runs) / 1e6, size / min(r[1] for r in runs) / 1e6, size / 1e6


# ---------------------------------------------------------------------------
# sentencex's behaviour
# ---------------------------------------------------------------------------

LONG_PARAGRAPH_CHILD = r"""
import json, sys, time
from sentencex import segment

def status(field):  # kB, from Linux's /proc (ru_maxrss would include the parent's peak: it survives exec)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

kind, size = sys.argv[1], int(sys.argv[2])
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
if kind == "words":        # words only: no punctuation, no newline
    unit = " ".join(words) + " "
elif kind == "sentences":  # ordinary sentences, but no newline at all
    unit = "Tämä on lause, jossa on esim. lyhenne ja luku 12.30. Toinen lause päättyy tähän! "
text = (unit * (size // len(unit.encode()) + 1))[:size]
segment("fi", "Hei. Moi.")  # load the rules first
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
start = time.perf_counter()
sentences = segment("fi", text)
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"kind": kind, "bytes": len(text.encode()), "seconds": seconds,
                  "sentences": len(sentences), "rss_before_mb": before / 1024,
                  "peak_rss_mb": peak / 1024}))
"""


def sentencex_behaviour():
    try:
        import sentencex
        from sentencex import get_sentence_boundaries, segment
    except ImportError:
        print("sentencex: not installed")
        return
    print("### sentencex behaviour\n")
    print("module attributes:", [n for n in dir(sentencex) if not n.startswith("_")])
    cases = {
        "single newline, no period": "First line without period\nSecond line. Third.",
        "single newline after period": "First line.\nsecond line starts lower case.",
        "blank line (\\n\\n)": "First paragraph without period\n\nSecond paragraph. Third.",
        "CRLF blank line": "First paragraph without period\r\n\r\nSecond paragraph.",
        "empty string": "",
        "whitespace only": "  \n ",
    }
    for label, text in cases.items():
        print(f"- {label}: segment('en', {text!r}) -> {segment('en', text)!r}")
    print("- get_sentence_boundaries('fi', 'Hei. Moi.') ->", get_sentence_boundaries("fi", "Hei. Moi."))
    for language in ["en", "fi"]:
        lines = big_text(CASES[language], 1_000_000)
        whole = "\n".join(lines)
        lossless = all("".join(segment(language, line)) == line for line in lines)
        per_line = sum(len(clean(segment(language, line))) for line in lines)
        print(f"- {language}: 1 MB of test paragraphs: the pieces joined give the input back: "
              f"{lossless and ''.join(segment(language, whole)) == whole}; {per_line} sentences "
              f"one line at a time, {len(clean(segment(language, whole)))} when the lines are passed "
              f"joined by single newlines")
    # Which rules does a code get? Finnish rules keep "esim." inside the sentence.
    probe = "Tämä on esim. testi. Toinen lause."
    finnish = segment("fi", probe)
    english = segment("en", probe)
    print(f"\nlanguage codes, probe {probe!r}: fi -> {len(finnish)} sentences, en -> {len(english)}")
    for code in ["fi", "en", "xx", "", "FI", "fi-FI", "fi_FI", "fin", "smn", "krl", "se", "sv", "et", "nb"]:
        got = segment(code, probe)
        rules = "Finnish rules" if got == finnish else ("same as en" if got == english else "other")
        print(f"- {code!r}: {len(got)} sentences ({rules})")
    for bad in [None, 5]:
        try:
            segment(bad, "Hei.")
            print(f"- {bad!r}: accepted")
        except Exception as error:  # noqa: BLE001 - we report what it raises
            print(f"- {bad!r}: {type(error).__name__}: {error}")
    # Finnish abbreviations followed by a capitalised word (a lower-case word always continues).
    kept, split_ = [], []
    for abbreviation in ["esim.", "mm.", "n.", "klo", "prof.", "s.", "ns.", "jne.", "ks.", "yms.", "vrt.",
                         "eKr.", "jKr.", "ts.", "ym.", "tms.", "os.", "puh.", "milj."]:
        text = f"Asiasta kertoi {abbreviation} Virtanen eilen."
        (kept if len(segment("fi", text)) == 1 else split_).append(abbreviation)
    print(f"\nfi, 'Asiasta kertoi ABBR Virtanen eilen.': one sentence with {' '.join(kept)}; "
          f"split after {' '.join(split_)}")
    print("\nlong paragraphs, each in a fresh process (language fi):")
    for kind, size in [("words", 1_000_000), ("words", 4_000_000), ("sentences", 1_000_000),
                       ("sentences", 4_000_000)]:
        out = subprocess.run([sys.executable, "-c", LONG_PARAGRAPH_CHILD, kind, str(size)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        print(f"- {r['kind']} {r['bytes'] / 1e6:.0f} MB, one line: {r['seconds']:.3f} s, "
              f"{r['sentences']} sentences, RSS {r['rss_before_mb']:.1f} MB before the call, "
              f"peak {r['peak_rss_mb']:.1f} MB during it")


# ---------------------------------------------------------------------------


def versions():
    out = {}
    for package in ["sentencex", "blingfire", "pysbd", "segtok", "syntok", "regex"]:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the speed measurement")
    parser.add_argument("--failures", action="store_true", help="print every wrong paragraph")
    parser.add_argument("--mb", type=float, default=10.0, help="size of the speed text (MB = 10^6 bytes)")
    parser.add_argument("--no-behaviour", action="store_true", help="skip the sentencex behaviour probes")
    parser.add_argument("--splitters", default=",".join(SPLITTERS), help="comma-separated subset")
    args = parser.parse_args()
    names = [n.strip() for n in args.splitters.split(",") if n.strip()]

    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores available, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print("versions:", ", ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"cases: {len(ENGLISH)} English, {len(FINNISH)} Finnish paragraphs, "
          f"{sum(len(g) for _, g in ENGLISH)} / {sum(len(g) for _, g in FINNISH)} sentences\n")

    print("### Quality\n")
    print("| splitter | lang | language used | paragraphs exact | boundary P | R | F1 | text altered |")
    print("|---|---|---|---|---|---|---|---|")
    all_failures = []
    for name in names:
        for language in ["en", "fi"]:
            loaded = load(name, language)
            if loaded is None:
                print(f"| {name} | {language} | not installed | | | | | |")
                continue
            split, note = loaded
            q = quality(split, CASES[language])
            print(f"| {name} | {language} | {note} | {q['exact']}/{q['paragraphs']} "
                  f"({q['exact'] / q['paragraphs']:.0%}) | {q['precision']:.3f} | {q['recall']:.3f} "
                  f"| {q['f1']:.3f} | {q['altered']} |")
            all_failures += [(name, language, *f) for f in q["failures"]]
    if args.failures:
        print("\n### Failures\n")
        for name, language, label, gold, predicted in all_failures:
            print(f"- {name} [{language}] {label}:\n    gold: {gold}\n    got:  {predicted}")

    if not args.quick:
        print("\n### Speed (one core, best of 3, one call per paragraph)\n")
        texts = {}
        for language in ["en", "fi"]:
            lines = big_text(CASES[language], int(args.mb * 1e6))
            total = sum(len(line.encode("utf-8")) + 1 for line in lines)
            texts[language] = (lines, total)
            print(f"{language}: {total / 1e6:.1f} MB, {len(lines)} paragraphs, "
                  f"{total / len(lines):.0f} bytes a paragraph on average")
        print("1-minute load average before: %.2f" % os.getloadavg()[0])
        print("\n| splitter | en MB/s (CPU) | fi MB/s (CPU) | en MB/s (wall) | fi MB/s (wall) | MB timed (en / fi) |")
        print("|---|---|---|---|---|---|")
        for name in names:
            cpu, wall, sizes = [], [], []
            for language in ["en", "fi"]:
                loaded = load(name, language)
                if loaded is None:
                    cpu.append("not installed")
                    wall.append("not installed")
                    continue
                lines, total = texts[language]
                wall_rate, cpu_rate, used = speed(loaded[0], lines, total)
                cpu.append(f"{cpu_rate:.2f}")
                wall.append(f"{wall_rate:.2f}")
                sizes.append(f"{used:.1f}")
            print(f"| {name} | {cpu[0]} | {cpu[1]} | {wall[0]} | {wall[1]} | {' / '.join(sizes)} |")
        print("\n1-minute load average after: %.2f" % os.getloadavg()[0])

    if not args.no_behaviour:
        print()
        sentencex_behaviour()


if __name__ == "__main__":
    main()
