"""`create_app(settings)`: the FastAPI application, versioned under `/v1`, documented at `/openapi.json`.

Errors are JSON `{"detail": ...}`. A proof log or rule directory that cannot be read is a 503 whose message
says so without internals (the server log has them); nothing the API returns carries a token, the signing key,
an exchange secret or a database password.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from api.routes import decisions, log, operations, rules
from api.services import Services
from api.settings import ApiSettings
from reasoning.prooflog.errors import ProofLogError
from reasoning.proposals import ProposalError

API_VERSION = "1.0.0"
_log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    context = Services.of(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(
        title="CryptoScalp proof log API",
        version=API_VERSION,
        description=(
            "Auditors query every decision of the reasoning guard with its proofs, explanations and Merkle "
            "inclusion and consistency proofs against Ed25519-signed checkpoints; risk officers change rules "
            "under four eyes; operators and risk officers engage the kill switch. Every route but /healthz "
            "needs `Authorization: Bearer <token>` (`cryptoscalp tokens create --role ROLE`)."
        ),
        lifespan=lifespan,
    )
    app.state.services = context
    for router in (decisions.router, log.router, rules.router, operations.router):
        app.include_router(router)
    app.add_exception_handler(ProofLogError, _proof_log_unavailable)
    app.add_exception_handler(ProposalError, _rules_unavailable)
    app.middleware("http")(_no_store)
    return app


async def _proof_log_unavailable(_: Request, exc: Exception) -> Response:
    _log.error("proof log unavailable: %s", exc)
    return JSONResponse({"detail": "the proof log cannot be read right now; see the server log"}, status_code=503)


async def _rules_unavailable(_: Request, exc: Exception) -> Response:
    _log.error("rule set unavailable: %s", exc)
    return JSONResponse({"detail": "the rule set cannot be read right now; see the server log"}, status_code=503)


async def _no_store(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Answers are per token and change as the log grows: no shared or browser cache may keep them."""
    response = await call_next(request)
    response.headers["Cache-Control"] = "no-store"
    return response
