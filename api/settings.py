"""What an API instance is pointed at: the proof log, its keys, the API's state database, rules, halt file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from reasoning.prooflog.keys import public_key_path
from reasoning.prooflog.opening import default_key_path_for
from reasoning.rules import RULES_DIR

DEFAULT_STATE_DB = Path("runs/api-state.sqlite3")
DEFAULT_KILL_SWITCH_FILE = Path("runs/kill_switch.json")


class ApiSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    proof_log: str = Field(description="The proof log: a SQLite file or a postgresql:// DSN.")
    state_db: Path = Field(DEFAULT_STATE_DB, description="The API's SQLite database: tokens, decision index.")
    rules_dir: Path = Field(RULES_DIR, description="The active rule set's directory.")
    kill_switch_file: Path = Field(DEFAULT_KILL_SWITCH_FILE, description="The halt file the trading loop polls.")
    signing_key: Path | None = Field(
        None, description="Ed25519 key the API signs with when it appends (default: the log's default key)."
    )
    public_key: Path | None = Field(None, description="The log's public key (default: <signing key>.pub).")

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key or default_key_path_for(self.proof_log)

    @property
    def public_key_path(self) -> Path:
        return self.public_key or public_key_path(self.signing_key_path)
