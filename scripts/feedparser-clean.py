"""Lists the test documents of feedparser's sdist that feedparser reads
without a bozo flag, for tests/fixtures/feedparser-clean.txt:

    python3 scripts/feedparser-clean.py target/feedparser/tests \
        | grep -v '^wellformed/cdf/\|^wellformed/http/' > tests/fixtures/feedparser-clean.txt
"""
import feedparser, os, sys, warnings
warnings.simplefilter("ignore")
root = sys.argv[1]
clean, bozo, cdf = [], 0, 0
for d in ["wellformed", "encoding", "entities", "illformed"]:
    for dirpath, _, files in os.walk(os.path.join(root, d)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            try:
                r = feedparser.parse(p)
            except Exception as e:
                bozo += 1; continue
            if r.get("version") == "cdf":
                cdf += 1; continue
            if r.bozo:
                bozo += 1; continue
            clean.append(rel)
print(len(clean), "clean;", bozo, "bozo;", cdf, "cdf", file=sys.stderr)
print("\n".join(sorted(clean)))
