"""What the routes work with, built once per app from its settings, and how a route gets it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.index import DecisionIndex
from api.log_access import LogAccess
from api.settings import ApiSettings
from api.state import StateDb
from api.tokens import TokenStore
from reasoning.kill_switch import KillSwitch
from reasoning.proposals import ProposalService


@dataclass(frozen=True, slots=True)
class Services:
    settings: ApiSettings
    state: StateDb
    tokens: TokenStore
    log: LogAccess
    index: DecisionIndex
    kill_switch: KillSwitch
    proposals: ProposalService

    @classmethod
    def of(cls, settings: ApiSettings) -> Services:
        state = StateDb(settings.state_db)
        log = LogAccess(settings)
        return cls(
            settings=settings,
            state=state,
            tokens=TokenStore(state),
            log=log,
            index=DecisionIndex(state, log),
            kill_switch=KillSwitch(settings.kill_switch_file),
            proposals=ProposalService(settings.rules_dir, settings.state_db, log),
        )

    def close(self) -> None:
        self.state.close()


def services(request: Request) -> Services:
    """The dependency routes declare to reach the app's services."""
    found: Services = request.app.state.services
    return found
