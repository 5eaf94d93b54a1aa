"""The go-live gate: PASS or FAIL from journaled evidence (docs/go-live.md).

Above the drills and ops layers: it reads what certify and the drills proved.
"""
