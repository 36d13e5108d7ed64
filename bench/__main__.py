"""`python -m bench` (or `make bench`): every benchmark, results written to bench/results/.

python -m bench                       both, at full size (about 15 minutes on 2 cores)
python -m bench ingest [options]      the ingest benchmark only (options: python -m bench ingest -h)
python -m bench evaluation [options]  the evidence endpoints only (python -m bench evaluation -h)
python -m bench load [options]        the API and web app under 1-500 clients (python -m bench load -h)
"""

import sys

from bench import evaluation, ingest, load

BENCHMARKS = {"ingest": ingest.main, "evaluation": evaluation.main, "load": load.main}

name, *options = sys.argv[1:] or [""]
if name in BENCHMARKS:
    BENCHMARKS[name](options)
elif name in ("-h", "--help"):
    print(__doc__)
elif name:
    sys.exit(f"unknown benchmark {name!r}\n{__doc__}")
else:
    for run in BENCHMARKS.values():
        run([])
