"""The Context API (v1): /api/v1/contexts, /snapshots, /handoffs, /decisions and /coe/token.

Bearer tokens scoped to an installation (optionally a job, read-only), a rate limit per
token (Redis, or in process), and a read-through Redis cache of latest versions. Each
module holds one job:

- router.py: `api_router(settings, store)`, what `create_app` includes, and `Api`, what the routes share;
- route.py: the route class every request passes first (token, rate limit, body);
- errors.py, json_body.py, limits.py, revocation.py, token_book.py: its parts (bot/loop_redis.py its Redis);
- contexts.py, snapshots.py, handoffs.py, decisions.py, coe_token.py: the routes;
- cache.py: the latest-version cache on the event loop;
- loop_db.py, loop_writer.py: PostgreSQL on the event loop, and the context writes on it.

The operations themselves are agents.context.service's; a context version is written by
agents/context/writes.py.
"""

from bot.api.router import api_router

__all__ = ["api_router"]
