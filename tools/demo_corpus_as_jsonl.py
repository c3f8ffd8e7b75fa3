#!/usr/bin/env python3
"""Write the demo corpus as a dump gives it: documents, not sentences, in zstd-compressed JSON Lines.

    python tools/demo_corpus_as_jsonl.py > demo/corpus/python-docs.jsonl.zst

Each document of demo/corpus/python-docs-*.txt (BERT's format) becomes one
JSON object {"id": "python-docs-1/17", "text": "..."} whose text is the
document's sentences joined by spaces: what `make demo` prepares (split into
sentences again, deduplicated, sharded). The output is the same bytes on
every run with the same zstandard version.
"""

import glob
import json
import os
import sys

import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from bert_pretraining.corpus import iter_documents  # noqa: E402


def main():
    lines = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "demo/corpus/python-docs-*.txt"))):
        name = os.path.splitext(os.path.basename(path))[0]
        for index, document in enumerate(iter_documents([path])):
            lines.append(json.dumps({"id": f"{name}/{index}", "text": " ".join(document)}, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    sys.stdout.buffer.write(zstandard.ZstdCompressor(level=19).compress(data))


if __name__ == "__main__":
    main()
