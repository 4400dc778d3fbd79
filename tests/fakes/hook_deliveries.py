"""The App's webhook deliveries on the fake GitHub (a part of `FakeGitHub`).

`add_hook_delivery(guid, event, ...)` records one attempt as GitHub lists it (the shape of
githubkit's `HookDeliveryItem`). `GET /app/hook/deliveries` (the App's JWT only) lists them
newest first, `per_page` at a time (30 by default, at most 100), with a Link header whose
`cursor` leads to the next page, as GitHub pages them. `POST /app/hook/deliveries/{id}/attempts`
records a new attempt of the same guid (`redelivery: true`) and answers 202; `deliver`, when
set, is GitHub sending that attempt to the webhook: called with the attempt and the payload
given to `add_hook_delivery`, it answers the status code the attempt records (200 without it);
it runs on the fake's own thread while it holds its lock, so it must not call the fake back.
`redelivery_requests` lists the attempt ids asked for, in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

HTTP_STATUS = {200: "OK", 202: "OK", 204: "OK"}
Deliver = Callable[[dict[str, Any], dict[str, Any] | None], int]


class HookDeliveries:
    _ids: itertools.count[int]
    _app_claims: Callable[..., dict[str, Any] | None]

    def _reset_hook_deliveries(self) -> None:
        self.hook_deliveries: list[dict[str, Any]] = []  # every attempt, in the order made
        self.hook_payloads: dict[str, dict[str, Any] | None] = {}  # guid → its payload, for `deliver`
        self.redelivery_requests: list[int] = []
        self.deliver: Deliver | None = None

    def add_hook_delivery(
        self,
        guid: str,
        event: str,
        *,
        action: str | None = None,
        status_code: int = 200,
        status: str | None = None,
        delivered_at: datetime | None = None,
        redelivery: bool = False,
        installation_id: int | None = 1,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One attempt; `status` defaults to what GitHub shows for the code ("OK", "Invalid HTTP Response: 503",
        or for 0 "timed out")."""
        if status is None:
            status = HTTP_STATUS.get(status_code) or (
                "timed out" if status_code == 0 else f"Invalid HTTP Response: {status_code}"
            )
        id = next(self._ids)
        attempt = {
            "id": id,
            "guid": guid,
            "delivered_at": _stamp(delivered_at or datetime.now(UTC)),
            "redelivery": redelivery,
            "duration": 0.27,
            "status": status,
            "status_code": status_code,
            "event": event,
            "action": action,
            "installation_id": installation_id,
            "repository_id": 1296269,
            "throttled_at": None,
        }
        self.hook_deliveries.append(attempt)
        self.hook_payloads.setdefault(guid, payload)
        return attempt

    def list_hook_deliveries(self, call: Any, url: str) -> tuple[int, Any, dict[str, str]]:
        if self._app_claims(call) is None:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        per_page = min(int(call.query.get("per_page", 30)), 100)
        newest_first = sorted(self.hook_deliveries, key=lambda a: (a["delivered_at"], a["id"]), reverse=True)
        cursor = call.query.get("cursor")
        if cursor is not None:  # the last attempt of the page before
            ids = [attempt["id"] for attempt in newest_first]
            newest_first = newest_first[ids.index(int(cursor.removeprefix("v1_"))) + 1 :]
        page = newest_first[:per_page]
        headers = {}
        if len(newest_first) > per_page:
            base = url.partition("?")[0]
            query = urlencode({"per_page": per_page, "cursor": f"v1_{page[-1]['id']}"})
            headers["link"] = f'<{base}?{query}>; rel="next"'
        return 200, page, headers

    def redeliver_hook_delivery(self, call: Any, url: str, id: str) -> tuple[int, Any, dict[str, str]]:
        if self._app_claims(call) is None:
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        original = next((attempt for attempt in self.hook_deliveries if attempt["id"] == int(id)), None)
        if original is None:
            return 404, {"message": "Not Found"}, {}
        self.redelivery_requests.append(int(id))
        status_code = self.deliver(original, self.hook_payloads.get(original["guid"])) if self.deliver else 200
        self.add_hook_delivery(
            original["guid"],
            original["event"],
            action=original["action"],
            status_code=status_code,
            redelivery=True,
            installation_id=original["installation_id"],
        )
        return 202, {}, {}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
