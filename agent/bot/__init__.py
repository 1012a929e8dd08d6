"""The issue-triggered bot: a maintainer labels an issue `integrate` or comments
`/integrate <hf-repo> [options]`, a worker runs `integrate` and answers with a draft PR.

triggers.py   which events start, cancel or are refused (one rule set for both deployments)
jobs.py       the job model and its store: idempotency, leases, per-repository limit, cancel
queue.py      one URL picks the backend: huey's SqliteHuey/RedisHuey and the job store beside it
status.py     the one status comment per job, rendered and edited in place
github_app.py GitHub clients per App installation (publish's client and App credentials)
webhook.py    `integrate bot serve`: the ASGI app that verifies, de-duplicates and enqueues
worker.py     `integrate bot worker`: claims jobs, runs `integrate` as a child, reports
execution.py  one job's checkout, command line, progress and result, on the worker
workflow.py   `integrate bot workflow`: the GitHub Actions deployment
actions.py    `integrate bot run-event`: the job of the Actions deployment, in one process
"""
