"""`python -m bench` (or `make bench`): every benchmark, results written to bench/results/.

python -m bench              both, at full size (about 15 minutes on 2 cores)
python -m bench ingest       the ingest benchmark only (options: python -m bench.ingest -h)
python -m bench evaluation   the evidence endpoints only (options: python -m bench.evaluation -h)
"""

import sys

from bench import evaluation, ingest

chosen = sys.argv[1:] or ["ingest", "evaluation"]
if "ingest" in chosen:
    ingest.main([])
if "evaluation" in chosen:
    evaluation.main([])
