"""Place a pretend call for the demo: the named agent's open /agent/ page pops.

By default it does what the telephony connector does: POST /api/v1/calls to the
running server with the integration user's token (seed_demo makes `cti`). That
works on the embedded default too, where events travel in-process inside the
server. `--direct` calls the service from this process instead, which reaches
the page only through Redis pub/sub (REDIS_URL set for both).
"""

import json
import time
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from context.adapters import samples as platform_samples  # issue 16
from context.calls import CALL_EVENTS, call_event_record
from crm import tokens
from crm.exceptions import DomainError
from crm.permissions import is_integration


class Command(BaseCommand):
    help = "Post a call event (default: ringing, then connected) so the agent's /agent/ page pops."

    def add_arguments(self, parser):
        parser.add_argument("--agent", help="username of the agent taking the call, e.g. jane")
        parser.add_argument("--phone", help='caller number in any form, e.g. "+1 212 555 0000"')
        parser.add_argument("--call-id", help="telephony call id (default: a new one)")
        parser.add_argument("--event", choices=CALL_EVENTS, help="send only this event (e.g. ended)")
        parser.add_argument("--verified", action="append", default=[], help="identifier kind the IVR verified")
        parser.add_argument("--ivr", default="{}", help='JSON the caller gave the IVR, e.g. \'{"intent": "billing"}\'')
        parser.add_argument("--as-user", default="cti", help="integration user posting the event (default: cti)")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running server (default: %(default)s)")
        parser.add_argument("--direct", action="store_true", help="call the service here (needs REDIS_URL)")
        # --- issue 16
        parser.add_argument(
            "--platform",
            choices=sorted(platform_samples.PLATFORM_SAMPLES),
            help="post that platform's own sample events (tests/data/cti) to the server's adapter instead",
        )

    def handle(self, *args, **opts):
        if opts["platform"]:  # issue 16
            self.handle_platform(opts)
            return
        if not opts["agent"] or not opts["phone"]:
            raise CommandError("--agent and --phone are required (or --platform twilio|connect|genesys)")
        try:
            ivr = json.loads(opts["ivr"])
        except ValueError as exc:
            raise CommandError(f"--ivr is not JSON: {exc}") from None
        if not isinstance(ivr, dict):
            raise CommandError("--ivr must be a JSON object")
        actor = get_user_model().objects.filter(username=opts["as_user"]).first()
        if actor is None or not is_integration(actor):
            raise CommandError(f"'{opts['as_user']}' is not an integration user; run `manage.py seed_demo` first.")
        if opts["direct"] and not settings.REDIS_URL:
            self.stderr.write("Without REDIS_URL a --direct event only reaches pages served by this process (none).")
        call_id = opts["call_id"] or f"sim-{uuid.uuid4().hex[:12]}"
        for name in [opts["event"]] if opts["event"] else ["ringing", "connected"]:
            body = {
                "event": name,
                "agent": opts["agent"],
                "call_id": call_id,
                "channel": "phone",
                "verified": opts["verified"],
                "ivr": ivr,
            }
            if name != "ended":
                body["phone"] = opts["phone"]
            started = time.perf_counter()
            result = self.send_direct(actor, body) if opts["direct"] else self.send_http(actor, opts["url"], body)
            elapsed = (time.perf_counter() - started) * 1000
            self.stdout.write(f"{name}: call {call_id} -> interaction {result['interaction_id']} ({elapsed:.0f} ms)")
        if not opts["event"]:
            self.stdout.write(
                f"{opts['agent']}'s open /agent/ page shows the caller now. End the call with:\n"
                f"  manage.py simulate_call --agent {opts['agent']} --phone '{opts['phone']}' "
                f"--call-id {call_id} --event ended"
            )

    def send_direct(self, actor, body: dict) -> dict:
        try:
            return call_event_record(actor=actor, **body)
        except DomainError as exc:
            raise CommandError(f"{exc.field or 'error'}: {exc.message}") from None

    def send_http(self, actor, url: str, body: dict) -> dict:
        # A token for this one call, revoked afterwards (tokens are stored hashed: none can be read back).
        token, _ = tokens.issue(actor)
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own server
            url.rstrip("/") + "/api/v1/calls",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
        except urllib.error.URLError as exc:
            raise CommandError(f"No server at {url} ({exc.reason}); start it with `make run`.") from None
        finally:
            tokens.revoke_key(token)

    # --- issue 16: the platforms' own payloads

    def handle_platform(self, opts) -> None:
        platform = opts["platform"]
        if opts["agent"]:
            platform_samples.agent_identities_assign(opts["agent"])
            self.stdout.write(f"{opts['agent']} now has the samples' agent identities on every platform.")
        token = None
        if platform != "twilio":
            actor = get_user_model().objects.filter(username=opts["as_user"]).first()
            if actor is None or not is_integration(actor):
                raise CommandError(f"'{opts['as_user']}' is not an integration user; run `manage.py seed_demo` first.")
            token = tokens.issue(actor)[0]  # one token for these requests, revoked after them
        elif not settings.CRM_TWILIO_AUTH_TOKEN:
            raise CommandError("Set CRM_TWILIO_AUTH_TOKEN (the same for the server and this command) to sign.")
        base = opts["url"].rstrip("/")
        try:
            self._post_samples(platform, base, token, opts)
        finally:
            if token:
                tokens.revoke_key(token)

    def _post_samples(self, platform, base, token, opts) -> None:
        for name, path, headers, body in platform_samples.requests_for(platform, base, token, opts["phone"]):
            request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the operator's server
                    self.stdout.write(f"{name}: {response.status} {response.read().decode(errors='replace')}")
            except urllib.error.HTTPError as exc:
                raise CommandError(f"{name}: {exc.code}: {exc.read().decode(errors='replace')}") from None
            except urllib.error.URLError as exc:
                raise CommandError(f"No server at {base} ({exc.reason}); start it with `make run`.") from None
