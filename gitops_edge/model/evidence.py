"""What a failed health gate leaves behind: the technician sees why without the container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAILED_SUFFIX = "-gitops-edge-failed"
"""The container that failed a health gate is kept stopped as ``<name><FAILED_SUFFIX>``
(for ``docker logs``) until the next update of its stack."""

LOG_LINES = 50  # the last lines of a failed container's log kept as evidence


@dataclass(frozen=True)
class Evidence:
    """Why a service failed its health gate, kept with the sync and the stack."""

    service: str
    container: str
    exit_code: int | None
    health_log: str = ""
    logs: tuple[str, ...] = ()
    hook: str = ""  # a failed post_start hook: which, its exit status and output (exit_code is the hook's)

    def to_data(self) -> dict[str, Any]:
        data = {"service": self.service, "container": self.container, "exit_code": self.exit_code,
                "health_log": self.health_log, "logs": list(self.logs)}
        if self.hook:  # only a hook's failure says which hook
            data["hook"] = self.hook
        return data

    @staticmethod
    def from_data(data: Any) -> Evidence | None:
        if not isinstance(data, dict) or "service" not in data:
            return None
        code = data.get("exit_code")
        return Evidence(str(data["service"]), str(data.get("container", "")),
                        int(code) if isinstance(code, int) else None,
                        str(data.get("health_log", "")), tuple(str(x) for x in data.get("logs", ())),
                        str(data.get("hook", "")))
