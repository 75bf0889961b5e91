"""Every write of the cases layer, one module per subject: `intake` (submitting cases), `queues` (a category's
default queues), `sla` (the SLA sweep) and `retention` (purging old inputs). The admin, the API, the jobs, the
demo seed and the benchmarks call these; none of them writes a case another way."""
