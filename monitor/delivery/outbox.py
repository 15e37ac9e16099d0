"""Draining the outbox: what is due goes out, one claim at a time, by each target's rules.

The rules themselves are pure, in `monitor.delivery.policy`; who gets what is decided
in `monitor.delivery.routing`. For each due delivery, in order:

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
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from monitor.config.settings import Config, TargetConfig
from monitor.core.clock import Clock, span
from monitor.delivery import policy, routing
from monitor.delivery.messages import (
    alert_context,
    alert_data,
    dead_letter_context,
    digest_context,
    notice_message,
    queued_notice,
    summary_context,
    summary_shown,
    update_context,
)
from monitor.delivery.notify import Sender, SendOutcome
from monitor.store.store import Store
from monitor.store.views import Claim, EventView
from monitor.templates.render import Format, Message, Renderer


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
        labels = set(routing.addresses(self.config))
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
        target = routing.target(self.config, claim.target)
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
        milestone = event.milestone if event is not None else None
        wait: policy.Hold | policy.Fold | None = policy.quiet_hold(
            target, self.config.digest.tz, claim.kind, milestone, now
        )
        if wait is None and policy.capped(target, claim.kind):
            recent = self.store.sent_times(claim.target, now - policy.CAP_WINDOW)
            wait = policy.over_cap(target, claim.kind, recent)
        if isinstance(wait, policy.Hold):
            self.store.defer(claim, until=wait.until, hold=wait.reason)
            return "held"
        if isinstance(wait, policy.Fold):
            self.store.fold(claim, now=now, send_at=wait.send_at)
            return "folded"
        return None

    def _finish(self, claim: Claim, outcome: SendOutcome, log: Any) -> str:
        now = self.clock()
        if outcome.ok:
            status = self.store.finish(claim, now=now)
            log.info("delivery.sent")
            return status
        error = outcome.error or "send failed"
        verdict = policy.after_failure(
            self.config.delivery,
            attempts=claim.attempts,
            created_at=claim.created_at,
            http_status=outcome.status,
            now=now,
            rng=self.rng,
        )
        if isinstance(verdict, policy.Dead):
            status = self.store.finish(claim, now=now, error=error)
            log.error("delivery.dead", error=error, http_status=outcome.status)
            return status
        status = self.store.finish(claim, now=now, error=error, retry_at=verdict.at)
        log.warning(
            "delivery.failed",
            error=error,
            http_status=outcome.status,
            retry_in=round(verdict.delay.total_seconds()),
        )
        return status

    # -- rendering ------------------------------------------------------------

    def _render(
        self, claim: Claim, target: TargetConfig | None, event: EventView | None
    ) -> Message:
        fmt: Format = target.message_format if target else "text"
        tz = self._tz(target)
        explain = target.explain if target else False
        if claim.kind == "alert" and event is not None:
            story = self._stories.get(event.story)
            context = alert_context(event, story, tz, explain=explain)
            message = self.renderer.render("alert", fmt, context)
            return replace(message, data=alert_data(event, story))
        if claim.kind == "update" and claim.item_id is not None:
            update = self.store.update_alert(claim.item_id)
            story = self._stories.get(update.story)
            context = update_context(update, story, tz, explain=explain)
            message = self.renderer.render("update", fmt, context)
            return replace(message, data=alert_data(update, story))
        if claim.kind == "summary":
            folded = self.store.folded(claim.id)
            shown = summary_shown(folded)
            alerts = [self._alert(e, i, tz, explain) for e, i in shown]
            limit = target.max_per_hour if target and target.max_per_hour else len(folded)
            context = summary_context(claim.target, limit, alerts, len(folded))
            return self.renderer.render("summary", fmt, context)
        if claim.kind == "digest" and claim.story and claim.since and claim.until:
            return self.digest_message(claim.story, claim.since, claim.until, fmt, tz)
        return notice_message(self.renderer, fmt, claim.title, claim.body)

    def _alert(
        self, event_id: int | None, item_id: int | None, tz: ZoneInfo, explain: bool
    ) -> dict[str, Any]:
        """The context of a milestone alert (an event) or of an update (its first item)."""
        if event_id is not None:
            event = self.store.event(event_id)
            return alert_context(event, self._stories.get(event.story), tz, explain=explain)
        assert item_id is not None
        update = self.store.update_alert(item_id)
        return update_context(update, self._stories.get(update.story), tz, explain=explain)

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
            worth_telling = [r for r in dead if policy.worth_warning(r)]
            recipient = routing.dead_letter_target(self.config, target)
            if not worth_telling or recipient is None:
                if worth_telling:
                    self.log.error("delivery.dead_unreported", target=target, dead=len(dead))
                self.store.report_dead(ids, None, now=now)
                continue
            settings = self.config.delivery
            context = dead_letter_context(
                target,
                worth_telling,
                max_attempts=settings.max_attempts,
                max_age=span(settings.max_age),
                tz=self.config.digest.tz,
                stories=self.config.stories,
            )
            warning = queued_notice(
                self.renderer,
                "dead_letter",
                context,
                dedup_key=policy.warning_key(target, dead),
                targets=[recipient],
            )
            self.store.report_dead(ids, warning, now=now)
            self.log.warning("delivery.dead_warning", target=target, dead=len(dead), to=recipient)
            queued += 1
        return queued
