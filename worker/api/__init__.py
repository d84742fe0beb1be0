"""The producer HTTP API: submit jobs, follow them, cancel or retry them, from any language.

    from worker.api import create_app
    app = create_app(settings)   # a FastAPI app; `mediapurge api` serves it with uvicorn
"""

from worker.api.app import add_protected_router, create_app

__all__ = ["add_protected_router", "create_app"]
