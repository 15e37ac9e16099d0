"""Draining the outbox: what is due goes out, one claim at a time, by each target's rules.

For each due delivery, in order:

1. **quiet hours**: a target in its quiet window gets nothing now; the row waits
   (`hold=quiet`) until the window ends, untried. Milestone alerts may break through.
2. **hourly cap**: a target that had `max_per_hour` messages in the last hour gets
   no more alerts or updates; they are folded into one summary, sent when the window
   frees up.
3. **send**: rendered now (so a late alert carries the reports that came in while it
   waited), handed to apprise, and the target's own result recorded: sent; failed and
   retried with exponential backoff and jitter (longer after a 429/503); or dead after
   `max_attempts` or `max_age`. After a failure the run leaves that target alone.

Each claim is leased before the send and finished after it, so a process that dies in
between causes at most one duplicate, of that one delivery, once the lease ends. Dead
deliveries produce one warning, through another target when there is one.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from monitor.config.settings import Config, TargetConfig
from monitor.core.backoff import retry_delay
from monitor.delivery.messages import (
    alert_context,
    digest_context,
    local_time,
    notice_context,
    summary_context,
    update_context,
)
from monitor.delivery.notify import Sender, SendOutcome, target_labels
from monitor.store.store import Store
from monitor.store.views import Claim, EventView, Notice, OutboxRow
from monitor.templates.render import Format, Message, Renderer

Clock = Callable[[], datetime]
HOUR = timedelta(hours=1)
RATE_LIMITED = {429, 503}
DEAD_WARNING = "dead:"


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    folded: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


class Outbox:
    """Sends what the store has queued, honouring each target's quiet hours and cap."""

    def __init__(
        self,
        config: Config,
        store: Store,
        sender: Sender,
        renderer: Renderer,
        *,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.renderer = renderer
        self.clock = clock
        self.rng = rng
        self._stories = {s.id: s for s in config.stories}
        self.log = structlog.get_logger("monitor.outbox")

    async def deliver(
        self,
        *,
        ignore_backoff: bool = False,
        kinds: Collection[str] | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> DeliveryReport:
        """Send every due delivery once (`ignore_backoff`: failed ones too, at once).

        Once `stopping()` is true nothing more is claimed: a shutdown waits only for
        the send in flight, which is finished and recorded.
        """
        report = DeliveryReport()
        labels = set(target_labels(self.config))
        handled: set[int] = set()
        blocked: set[str] = set()
        while True:
            while labels - blocked and not (stopping and stopping()):
                claims = await asyncio.to_thread(
                    self.store.claim_due,
                    self.clock(),
                    self.config.delivery.lease,
                    targets=labels - blocked,
                    limit=1,
                    ignore_backoff=ignore_backoff,
                    exclude=handled,
                    kinds=kinds,
                )
                if not claims:
                    break
                claim = claims[0]
                handled.add(claim.id)
                outcome = await self._handle(claim)
                report.add(outcome)
                if outcome in ("failed", "dead"):
                    blocked.add(claim.target)
            # Deaths in this run are told in this run, through the targets still working.
            if stopping and stopping():
                return report
            if not await asyncio.to_thread(self.warn_dead) or kinds is not None:
                return report

    # -- one claim ------------------------------------------------------------

    async def _handle(self, claim: Claim) -> str:
        target = self.config.target(claim.target)
        log = self.log.bind(
            delivery=claim.id, target=claim.target, kind=claim.kind, attempt=claim.attempts
        )
        now = self.clock()
        event = (
            await asyncio.to_thread(self.store.event, claim.event_id)
            if claim.event_id is not None
            else None
        )
        if target is not None:
            waited = await asyncio.to_thread(self._wait_or_fold, claim, target, event, now)
            if waited is not None:
                log.info(f"delivery.{waited}")
                return waited
        try:
            message = await asyncio.to_thread(self._render, claim, target, event)
        except Exception as exc:  # a template or data fault: retried like a failed send
            outcome = SendOutcome(False, f"cannot render the message: {exc}")
        else:
            outcome = await asyncio.to_thread(self.sender.send, claim.target, message)
        return await asyncio.to_thread(self._finish, claim, outcome, log)

    def _wait_or_fold(
        self, claim: Claim, target: TargetConfig, event: EventView | None, now: datetime
    ) -> str | None:
        """Apply quiet hours and the hourly cap; "held"/"folded" when the claim must wait."""
        quiet = target.quiet(self.config.digest.tz)
        until = quiet.until(now) if quiet else None
        breaks = claim.kind == "alert" and event and target.breaks_through(event.milestone)
        if until is not None and not breaks:
            self.store.defer(claim, until=until, hold="quiet")
            return "held"
        cap = target.max_per_hour
        if cap is None or claim.kind not in ("alert", "update", "summary"):
            return None
        recent = self.store.sent_times(claim.target, now - HOUR)
        if len(recent) < cap:
            return None
        free_at = recent[len(recent) - cap] + HOUR
        if claim.kind == "summary":
            self.store.defer(claim, until=free_at, hold="cap")
            return "held"
        self.store.fold(claim, now=now, send_at=free_at)
        return "folded"

    def _finish(self, claim: Claim, outcome: SendOutcome, log: Any) -> str:
        settings = self.config.delivery
        now = self.clock()
        if outcome.ok:
            status = self.store.finish(claim, now=now)
            log.info("delivery.sent")
            return status
        error = outcome.error or "send failed"
        expired = now - claim.created_at >= settings.max_age
        if claim.attempts >= settings.max_attempts or expired:
            status = self.store.finish(claim, now=now, error=error)
            log.error("delivery.dead", error=error, http_status=outcome.status)
            return status
        wait = settings.rate_limited_wait if outcome.status in RATE_LIMITED else None
        delay = retry_delay(
            claim.attempts, settings.backoff_base, settings.backoff_max, self.rng, wait
        )
        status = self.store.finish(claim, now=now, error=error, retry_at=now + delay)
        log.warning(
            "delivery.failed",
            error=error,
            http_status=outcome.status,
            retry_in=round(delay.total_seconds()),
        )
        return status

    # -- rendering ------------------------------------------------------------

    def _render(
        self, claim: Claim, target: TargetConfig | None, event: EventView | None
    ) -> Message:
        fmt: Format = target.message_format if target else "text"
        tz = self._tz(target)
        if claim.kind == "alert" and event is not None:
            story = self._stories.get(event.story)
            return self.renderer.render("alert", fmt, alert_context(event, story, tz))
        if claim.kind == "update" and claim.item_id is not None:
            return self.renderer.render("update", fmt, self._alert(None, claim.item_id, tz))
        if claim.kind == "summary":
            alerts = [self._alert(e, i, tz) for e, i in self.store.folded(claim.id)]
            limit = target.max_per_hour if target and target.max_per_hour else len(alerts)
            context = summary_context(claim.target, limit, alerts)
            return self.renderer.render("summary", fmt, context)
        if claim.kind == "digest" and claim.story and claim.since and claim.until:
            return self.digest_message(claim.story, claim.since, claim.until, fmt, tz)
        return self.renderer.render(
            "notice", fmt, notice_context(claim.title or "message", claim.body or "")
        )

    def _alert(self, event_id: int | None, item_id: int | None, tz: ZoneInfo) -> dict[str, Any]:
        """The context of a milestone alert (an event) or of an update (its first item)."""
        if event_id is not None:
            event = self.store.event(event_id)
            return alert_context(event, self._stories.get(event.story), tz)
        assert item_id is not None
        update = self.store.update_alert(item_id)
        return update_context(update, self._stories.get(update.story), tz)

    def digest_message(
        self, story_id: str, since: datetime, until: datetime, fmt: Format, tz: ZoneInfo
    ) -> Message:
        material = self.store.digest_material(story_id, since, until)
        story = self._stories.get(story_id)
        context = digest_context(story, story_id, material, since=since, until=until, tz=tz)
        return self.renderer.render("digest", fmt, context)

    def _tz(self, target: TargetConfig | None) -> ZoneInfo:
        default = self.config.digest.tz
        return target.tz(default) if target else default

    # -- dead letters ---------------------------------------------------------

    def warn_dead(self) -> int:
        """Queue one warning per target with newly dead deliveries, through another target.

        Returns how many warnings were queued.
        """
        rows = self.store.unreported_dead()
        queued = 0
        now = self.clock()
        for target, group in groupby(
            sorted(rows, key=lambda r: (r.target, r.id)), lambda r: r.target
        ):
            dead = list(group)
            ids = [r.id for r in dead]
            worth_telling = [r for r in dead if not r.dedup_key.startswith(DEAD_WARNING)]
            recipient = self._warning_target(target)
            if not worth_telling or recipient is None:
                if worth_telling:
                    self.log.error("delivery.dead_unreported", target=target, dead=len(dead))
                self.store.report_dead(ids, None, now=now)
                continue
            warning = Notice(
                dedup_key=f"{DEAD_WARNING}{target}:{_fingerprint(dead)}",
                targets=[recipient],
                title=f"{len(worth_telling)} message(s) to {target} could not be delivered",
                body=self._dead_lines(target, worth_telling),
            )
            self.store.report_dead(ids, warning, now=now)
            self.log.warning("delivery.dead_warning", target=target, dead=len(dead), to=recipient)
            queued += 1
        return queued

    def _warning_target(self, dead_target: str) -> str | None:
        health = [t.label for t in self.config.targets_for("health")]
        others = [t.label for t in self.config.notify]
        return next((label for label in [*health, *others] if label != dead_target), None)

    def _dead_lines(self, target: str, rows: list[OutboxRow]) -> str:
        settings = self.config.delivery
        tz = self.config.digest.tz
        lines = [
            f"{len(rows)} message(s) to {target} were given up after {settings.max_attempts} "
            f"attempts or {_span(settings.max_age)} without success.",
            f"Last error: {rows[-1].last_error or 'unknown'}",
        ]
        for row in rows[:10]:
            what = row.title or (f"alert for event {row.event_id}" if row.event_id else row.kind)
            lines.append(f"- {row.kind}, queued {local_time(row.created_at, tz)}: {what}")
        if len(rows) > 10:
            lines.append(f"- and {len(rows) - 10} more")
        lines.append(
            "Once the target works again, `monitor deliver --retry-dead` sends them; "
            "`monitor history` lists the alerts."
        )
        return "\n".join(lines)


def _fingerprint(rows: list[OutboxRow]) -> str:
    """Names this set of deaths: the same rows dying again after a retry get a new name."""
    text = ",".join(f"{r.id}.{r.attempts}" for r in rows)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"
