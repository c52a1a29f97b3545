"""Full verification of a stored log: every leaf, every interior node, every checkpoint, in log order.

Nothing stored is trusted: leaf hashes are recomputed from the canonical bytes, the tree is rebuilt with a
frontier, stored interior nodes (which proofs are served from) are compared with the rebuilt ones, and every
checkpoint's signature and root are checked when the rebuilt tree reaches its size. The first problem in log
order is reported, naming the record — or, when only a signed root can show the damage (bytes and hashes both
rewritten), the first record after the last checkpoint that still verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reasoning.prooflog.checkpoint import Checkpoint, signature_is_valid
from reasoning.prooflog.errors import ProofLogError
from reasoning.prooflog.frontier import Frontier
from reasoning.prooflog.keys import key_id
from reasoning.prooflog.merkle import NodeKey, leaf_hash
from reasoning.prooflog.records import StoredRecord, envelope_frame, record_kind
from reasoning.prooflog.store import ProofLogStore


@dataclass(frozen=True, slots=True)
class VerificationFailure:
    """What is wrong first: `sequence` is the first bad record, `checkpoint_size` the bad checkpoint if any."""

    problem: str
    sequence: int | None = None
    checkpoint_size: int | None = None

    def message(self) -> str:
        if self.checkpoint_size is not None:
            where = f"checkpoint at tree size {self.checkpoint_size}"
            if self.sequence is not None:
                where += f" (first bad record {self.sequence})"
            return f"{where}: {self.problem}"
        return f"record {self.sequence}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    records: int
    checkpoints: int
    unsigned_records: int
    root_hash: bytes
    failure: VerificationFailure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


class VerificationFailed(Exception):
    """Raised inside a verifier to stop at the first failure it found."""

    def __init__(self, failure: VerificationFailure) -> None:
        super().__init__(failure.message())
        self.failure = failure


class _Verifier:
    def __init__(self, store: ProofLogStore, public_key: Ed25519PublicKey) -> None:
        self.store = store
        self.public_key = public_key
        self.key_id = key_id(public_key)
        self.frontier = Frontier()
        self.stored_levels: dict[int, Iterator[tuple[int, bytes]]] = {}
        self.checkpoints = store.checkpoints()
        self.next_checkpoint = 0
        self.last_good_checkpoint_size = 0
        self.last_signed_at = ""

    def run(self) -> None:
        self.check_due_checkpoints()
        for record in self.store.records():
            if record.seq != self.frontier.size:
                raise VerificationFailed(self.gap(record))
            leaf = self.check_record(record)
            for key, digest in self.frontier.append(leaf):
                self.check_stored_node(key, digest)
            self.check_due_checkpoints()
        self.check_nothing_beyond_the_records()

    def gap(self, record: StoredRecord) -> VerificationFailure:
        missing = self.frontier.size
        last = record.seq - 1
        span = f"record {missing} is" if last == missing else f"records {missing}–{last} are"
        return VerificationFailure(f"{span} missing (deleted) before stored record {record.seq}", sequence=missing)

    def check_record(self, record: StoredRecord) -> bytes:
        seq = record.seq
        leaf = leaf_hash(record.canonical)
        if leaf != record.leaf_hash:
            raise VerificationFailed(
                VerificationFailure("stored bytes do not hash to its leaf hash (record altered)", seq)
            )
        try:
            record_kind(record.kind)
        except ProofLogError as exc:
            raise VerificationFailed(VerificationFailure(f"kind column: {exc}", seq)) from None
        prefix, suffix = envelope_frame(seq, record.kind, record.created_at)
        if not record.canonical.endswith(suffix):
            raise VerificationFailed(self.misplaced(record))
        if not record.canonical.startswith(prefix):
            raise VerificationFailed(
                VerificationFailure("kind or created_at column differs from its signed content", seq)
            )
        return leaf

    @staticmethod
    def misplaced(record: StoredRecord) -> VerificationFailure:
        content_seq = _content_sequence(record.canonical)
        if content_seq is not None and content_seq < record.seq:
            problem = f"its signed content is stored at row {record.seq}: a record was inserted before it, or reordered"
            return VerificationFailure(problem, content_seq)
        problem = f"row holds the signed content of record {content_seq}: records deleted and renumbered, or reordered"
        return VerificationFailure(problem, record.seq)

    def check_stored_node(self, key: NodeKey, digest: bytes) -> None:
        stored = self.stored_levels.setdefault(key.level, self.store.interior_nodes(key.level))
        span = f"records {key.first_leaf}–{key.end_leaf - 1}"
        found = next(stored, None)
        if found is None or found[0] != key.node_index:
            problem = f"stored tree node level {key.level} index {key.node_index} over {span} is missing"
            raise VerificationFailed(VerificationFailure(problem, key.first_leaf))
        if found[1] != digest:
            self.prefer_misplaced_next_record(key)
            problem = (
                f"{span} do not hash to the stored tree node level {key.level} index {key.node_index} "
                f"(a record in this range, or the node, was altered)"
            )
            raise VerificationFailed(VerificationFailure(problem, key.first_leaf))

    def prefer_misplaced_next_record(self, key: NodeKey) -> None:
        """A forged record inserted with a consistent leaf hash breaks the node over it *and* shifts the record
        after it; that shifted record names the insertion point exactly, the node only a range."""
        following = self.store.record(self.frontier.size)
        if following is None or leaf_hash(following.canonical) != following.leaf_hash:
            return
        content_seq = _content_sequence(following.canonical)
        if content_seq is not None and key.first_leaf <= content_seq < following.seq:
            raise VerificationFailed(self.misplaced(following))

    def check_due_checkpoints(self) -> None:
        while (
            self.next_checkpoint < len(self.checkpoints)
            and self.checkpoints[self.next_checkpoint].tree_size == self.frontier.size
        ):
            self.check_checkpoint(self.checkpoints[self.next_checkpoint])
            self.next_checkpoint += 1

    def check_checkpoint(self, checkpoint: Checkpoint) -> None:
        size = checkpoint.tree_size
        if checkpoint.key_id != self.key_id:
            raise VerificationFailed(
                VerificationFailure(
                    f"signed by key {checkpoint.key_id}, the public key given is {self.key_id}", checkpoint_size=size
                )
            )
        if not signature_is_valid(self.public_key, checkpoint):
            problem = "signature does not verify (checkpoint altered or swapped)"
            raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))
        if checkpoint.root_hash != self.frontier.root():
            problem = (
                f"signed root differs from the root of the stored records; a record after the last good checkpoint "
                f"(size {self.last_good_checkpoint_size}) was altered together with its hashes"
            )
            raise VerificationFailed(VerificationFailure(problem, self.last_good_checkpoint_size, size))
        if checkpoint.signed_at < self.last_signed_at:
            problem = f"signed at {checkpoint.signed_at}, before the previous checkpoint ({self.last_signed_at})"
            raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))
        self.last_good_checkpoint_size = size
        self.last_signed_at = checkpoint.signed_at

    def check_nothing_beyond_the_records(self) -> None:
        count = self.frontier.size
        if self.next_checkpoint < len(self.checkpoints):
            checkpoint = self.checkpoints[self.next_checkpoint]
            problem = (
                f"signs {checkpoint.tree_size} records but the log holds {count} (records {count}–"
                f"{checkpoint.tree_size - 1} deleted) or no stored record count matches it"
            )
            raise VerificationFailed(VerificationFailure(problem, count, checkpoint.tree_size))
        for level in range(1, max(self.store.highest_node_level(), max(self.stored_levels, default=0)) + 1):
            stored = self.stored_levels.setdefault(level, self.store.interior_nodes(level))
            extra = next(stored, None)
            if extra is not None:
                first = extra[0] << level
                problem = f"stored tree node level {level} index {extra[0]} covers records that do not exist"
                raise VerificationFailed(VerificationFailure(problem, first))


def _content_sequence(canonical: bytes) -> int | None:
    """The `seq` a canonical envelope carries (its last member), or None when the bytes are not an envelope."""
    marker = canonical.rfind(b',"seq":')
    digits = canonical[marker + 7 : -1]
    if marker < 0 or not digits.isdigit() or not canonical.endswith(b"}"):
        return None
    return int(digits)


def verify(store: ProofLogStore, public_key: Ed25519PublicKey) -> VerificationReport:
    """Recompute the whole log and check it against its stored nodes and signed checkpoints."""
    verifier = _Verifier(store, public_key)
    failure: VerificationFailure | None = None
    try:
        verifier.run()
    except VerificationFailed as failed:
        failure = failed.failure
    size = verifier.frontier.size
    return VerificationReport(
        records=size,
        checkpoints=verifier.next_checkpoint,
        unsigned_records=size - verifier.last_good_checkpoint_size,
        root_hash=verifier.frontier.root(),
        failure=failure,
    )
