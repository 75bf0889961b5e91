"""People at work, every write of the reviews layer, one module per subject: `claims` (claim, release, claim-next,
skip), `decisions` (decide, batch approval), `labels` (the label each verdict makes, and certification),
`double_review` (second reviews and adjudication) and `reassign`. The admin's workplace, the API and the jobs call
these (as `reviews.services.claim(...)` and so on); neither writes a case another way."""

from reviews.services.claims import (
    claim,
    claim_duration,
    claim_next,
    claimable_in,
    is_waiting,
    keep,
    leave,
    may_work,
    opened_claim_duration,
    release,
    skip,
)
from reviews.services.decisions import BatchResult, Verdict, batch_approve, batch_cap, check_may_batch, decide
from reviews.services.double_review import (
    adjudicate,
    claim_double_review,
    release_double_review,
    submit_second_review,
)
from reviews.services.exports import export_path, request_export
from reviews.services.labels import certify, is_certified, revoke
from reviews.services.reassign import REASSIGN_PERM, reassign

__all__ = [
    "adjudicate",
    "claim_double_review",
    "release_double_review",
    "submit_second_review",
    "REASSIGN_PERM",
    "BatchResult",
    "Verdict",
    "batch_approve",
    "batch_cap",
    "check_may_batch",
    "certify",
    "claim",
    "claim_duration",
    "claim_next",
    "claimable_in",
    "decide",
    "export_path",
    "is_certified",
    "is_waiting",
    "keep",
    "leave",
    "may_work",
    "opened_claim_duration",
    "reassign",
    "release",
    "request_export",
    "revoke",
    "skip",
]
