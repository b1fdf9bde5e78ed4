"""The agent desk, second version (issue 12), in headless Chromium: what an agent on a live call needs.

Identity panel and "Verified on this call" across a transfer, after-call work that a new
call never replaces, drafts that survive a reload, the disconnected banner, context in
words, My recognitions, and the layout at 1400, 1024x700 and a 480 px side panel.
"""

import datetime as dt
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Identity, Interaction, Recognition, Sentiment
from tests.browser import test_agent_browser as first_desk
from tests.browser.tcp_proxy import TcpProxy
from tests.factories import CustomerFactory, FeedbackFactory, IdentityFactory, InteractionFactory, UserFactory, reason

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The bound for the disconnected banner.
BANNER_WAIT_MS = 5000
POP_WAIT_MS = first_desk.POP_WAIT_MS
open_agent_page, post_call, shot = first_desk.open_agent_page, first_desk.post_call, first_desk.shot
# The first agent page tests' fixtures, shared: Chromium, Jane, the CTI token, Jim, short keepalives.
chromium, jane, cti_token, jim = first_desk.chromium, first_desk.jane, first_desk.cti_token, first_desk.jim
_short_keepalive = first_desk._short_keepalive


@pytest.fixture
def desk(chromium, live_server, jane):
    """Jane's /agent/ page; its script must not fail."""
    pages = []

    def open_page(user=jane, **kwargs):
        page = open_agent_page(chromium, live_server, user, **kwargs)
        pages.append(page)
        return page

    yield open_page
    errors = [e for page in pages for e in page.script_errors]
    for page in pages:
        page.context.close()
    assert not errors, errors


@pytest.fixture
def omar(transactional_db):
    return UserFactory(username="omar", first_name="Omar", role="agent")


@pytest.fixture
def rita(transactional_db):
    customer = CustomerFactory(display_name="Rita Moreno", preferred_name="Rita")
    IdentityFactory(customer=customer, kind="phone", value="+12125550177", normalized="+12125550177")
    return customer


def wrap_up(page, *, reason_code="billing", outcome="resolved", summary=None):
    page.select_option("#wrap-reason", reason_code)
    page.select_option("#wrap-outcome", outcome)
    if summary is not None:
        page.fill("#wrap-summary", summary)
    page.click("#wrap-save")
    expect(page.locator("#wrap-msg")).to_contain_text("Saved")


def test_the_account_number_is_on_the_card_and_verified_on_this_call_holds_across_a_transfer(
    desk, live_server, cti_token, jim, jane, omar
):
    page = desk()
    post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-v")
    account = page.locator("#c-ids li[data-kind='account']")
    expect(account).to_contain_text("GF100200", timeout=POP_WAIT_MS)
    expect(account).to_contain_text("not verified")
    expect(page.locator("#c-verified")).to_contain_text("Not verified")
    expect(page.locator("#c-dna li[data-key='phone']")).to_have_text("phone number — on file")

    account.locator(".verify-btn").click()

    expect(account).to_contain_text("verified on this call")
    expect(page.locator("#c-verified")).to_contain_text("Identity verified on this call (account number)")
    expect(page.locator("#c-dna li[data-key='account']")).to_have_text(
        "account number — on file, verified on this call"
    )
    shot(page, "agent-desk-verified")
    identity = Identity.objects.get(customer=jim, kind="account")
    assert (identity.verified_via, identity.verified_by) == ("agent", jane)

    # Jane transfers the call to Omar: same call_id, his card says verified.
    other = desk(omar)
    post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-v", agent="omar")
    expect(other.locator("#c-verified")).to_contain_text("Identity verified on this call", timeout=POP_WAIT_MS)
    expect(other.locator("#c-ids li[data-kind='account']")).to_contain_text("verified on this call")
    expect(other.locator("#c-ids li[data-kind='account'] .verify-btn")).to_have_count(0)


def test_a_second_call_during_wrap_up_waits_and_both_wrap_ups_are_saved(desk, live_server, cti_token, jim, rita):
    page = desk()
    first = post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-a")
    expect(page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    page.click("#wrap-summary")
    page.keyboard.type("Refunded the double charge")

    second = post_call(live_server, cti_token, event="ringing", phone="+12125550177", call_id="call-b")

    expect(page.locator("#queued")).to_be_visible(timeout=POP_WAIT_MS)
    expect(page.locator("#queued-text")).to_contain_text("Next call waiting: Rita")
    # Caller A's wrap-up is intact and still has the keyboard: typing goes on into it.
    expect(page.locator("#c-name")).to_have_text("James Okafor")
    expect(page.locator("#wrap-summary")).to_be_focused()
    page.keyboard.type(".")
    expect(page.locator("#wrap-summary")).to_have_value("Refunded the double charge.")
    shot(page, "agent-desk-call-waiting")

    wrap_up(page)
    page.click("#done")
    expect(page.locator("#c-name")).to_have_text("Rita Moreno")
    expect(page.locator("#queued")).to_be_hidden()
    expect(page.locator("#wrap-summary")).to_have_value("")
    wrap_up(page, reason_code="technical_fault", outcome="follow_up", summary="Router swap booked")

    a = Interaction.objects.get(pk=first["interaction_id"])
    b = Interaction.objects.get(pk=second["interaction_id"])
    assert (a.reason.code, a.outcome, a.summary) == ("billing", "resolved", "Refunded the double charge.")
    assert (b.reason.code, b.outcome, b.summary) == ("technical_fault", "follow_up", "Router swap booked")


def test_reason_and_outcome_are_required_and_next_contact_asks_before_discarding(desk, live_server, cti_token, jim):
    page = desk()
    popped = post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-r")
    expect(page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    page.fill("#wrap-summary", "Asked about the bill")
    page.click("#wrap-save")
    expect(page.locator("#wrap-msg")).to_have_text(
        "Choose a reason and an outcome to save: reports count every contact by them."
    )
    expect(page.locator("#wrap-reason")).to_be_focused()
    assert Interaction.objects.get(pk=popped["interaction_id"]).summary == ""

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.keyboard.press("Alt+N")
    expect(page.locator("#c-name")).to_have_text("James Okafor")  # kept: the agent said no
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#done")
    expect(page.locator("#status")).to_have_text("Ready for a contact")


def test_a_reload_keeps_the_draft_and_the_waiting_call(desk, live_server, cti_token, jim, rita):
    page = desk()
    first = post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-d")
    expect(page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    page.select_option("#wrap-outcome", "unresolved")
    page.fill("#wrap-summary", "Still disputes the March charge")
    page.click("[data-add=facts]")
    page.keyboard.type("dispute_ref")
    page.keyboard.press("Tab")
    page.keyboard.type("D-77")
    post_call(live_server, cti_token, event="ringing", phone="+12125550177", call_id="call-e")
    expect(page.locator("#queued")).to_be_visible(timeout=POP_WAIT_MS)

    page.reload()

    expect(page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
    expect(page.locator("#wrap-summary")).to_have_value("Still disputes the March charge")
    expect(page.locator("#wrap-outcome")).to_have_value("unresolved")
    expect(page.locator("#wrap-facts input[name=facts-value]")).to_have_value("D-77")
    expect(page.locator("#queued-text")).to_contain_text("Rita")
    wrap_up(page)
    assert Interaction.objects.get(pk=first["interaction_id"]).summary == "Still disputes the March charge"
    page.click("#done")
    expect(page.locator("#c-name")).to_have_text("Rita Moreno")


def test_the_disconnected_banner_shows_within_five_seconds_and_reconnect_replays_the_call(
    chromium, live_server, cti_token, jane, jim
):
    proxy = TcpProxy(live_server.thread.host, live_server.thread.port)
    proxy.start()
    try:
        page = open_agent_page(chromium, proxy, jane)
        expect(page.locator("#offline")).to_be_hidden()

        proxy.stop()
        stopped = time.perf_counter()
        expect(page.locator("#offline")).to_be_visible(timeout=BANNER_WAIT_MS)
        print(f"banner {(time.perf_counter() - stopped) * 1000:.0f} ms after the server went away")
        expect(page.locator("#offline")).to_contain_text("Disconnected — calls will not pop")
        expect(page.locator("#status")).to_have_text("Not ready — disconnected")
        expect(page.locator("#ready-title")).to_have_text("Not ready — calls will not pop")
        shot(page, "agent-desk-disconnected")

        # A call put through meanwhile pops once the page is back.
        post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="call-away")
        proxy.start()
        expect(page.locator("#offline")).to_be_hidden(timeout=BANNER_WAIT_MS)
        expect(page.locator("#c-name")).to_have_text("James Okafor", timeout=POP_WAIT_MS)
        assert not page.script_errors, page.script_errors
        page.context.close()
    finally:
        proxy.stop()


def test_context_in_words_for_a_repeat_caller_and_a_withheld_number(desk, live_server, cti_token, jim):
    now = timezone.now()
    FeedbackFactory(
        customer=jim,
        rating=2,
        sentiment=Sentiment.NEGATIVE,
        text="I have called three times about the same charge and nobody calls me back. " * 4,
        received_at=timezone.now(),  # newer than the fixture's complaint
    )
    InteractionFactory(customer=jim, source="contact", call_id="popped-not-wrapped", started_at=now)
    page = desk()
    post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="c-w", ivr={"intent": "billing"})

    expect(page.locator("#c-repeat")).to_have_text(
        "This is their 3rd contact about Billing question in 30 days (2 before this one)."
        " Own it — don't make them start over.",
        timeout=POP_WAIT_MS,
    )
    expect(page.locator("#c-recent li")).to_have_count(2)  # the pop nobody wrapped up is not a contact
    expect(page.locator("#c-feedback-text")).to_contain_text("I have called three times")
    page.click("#c-feedback-more")
    # The card carries the first 280 characters of the customer's words (issue 13); "Show all" shows them all.
    words = ("I have called three times about the same charge and nobody calls me back. " * 4)[:280]
    expect(page.locator("#c-feedback-text")).to_have_text(words.strip())
    expect(page.locator("#c-dna li[data-key='intent']")).to_have_text("intent — told the IVR: Billing question")
    wrap_up(page)
    page.click("#done")

    post_call(live_server, cti_token, event="ringing", phone="anonymous", call_id="c-anon")
    expect(page.locator("#c-name")).to_have_text("Unknown caller", timeout=POP_WAIT_MS)
    expect(page.locator("#c-withheld")).to_have_text("Number withheld")
    expect(page.locator("#c-unknown")).to_have_text(
        "The caller withheld their number. Ask who they are, then find or create them."
    )
    expect(page.locator("#who")).not_to_contain_text("anonymous")


def test_my_recognitions_arrive_live(desk, jane, jim):
    old = FeedbackFactory(customer=jim, rating=5, text="Jane was lovely")
    Recognition.objects.create(feedback=old, staff=jane, quote="Jane was lovely")
    page = desk()
    expect(page.locator("#kudos-list li")).to_have_count(1)
    expect(page.locator("#kudos-list")).to_contain_text("Jane was lovely")

    Recognition.objects.create(  # as the feedback workflow does, in a worker
        feedback=FeedbackFactory(customer=jim, rating=5), staff=jane, quote="Sorted my refund in two minutes"
    )

    newest = page.locator("#kudos-list li").first
    expect(newest).to_contain_text("Sorted my refund in two minutes", timeout=POP_WAIT_MS)
    expect(newest).to_have_class("new")


@pytest.mark.parametrize(("width", "height"), [(1400, 1000), (1024, 700), (480, 900)])
def test_the_layout_has_no_horizontal_scroll_and_the_wrap_up_in_view(desk, live_server, cti_token, jim, width, height):
    jim.display_name = "James Okafor-Abernathy-Wolstenholme"
    jim.save()
    for days in (2, 6):
        InteractionFactory(
            customer=jim,
            reason=reason("billing"),
            outcome="unresolved",
            started_at=timezone.now() - dt.timedelta(days=days),
            summary="A long summary without breaks: " + "x" * 120,
        )
    page = desk(viewport={"width": width, "height": height})
    post_call(live_server, cti_token, event="connected", phone="+12125550100", call_id="c-l", ivr={"intent": "billing"})
    expect(page.locator("#c-name")).to_contain_text("James", timeout=POP_WAIT_MS)

    scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll[0] <= scroll[1], f"scrolls sideways at {width}px: {scroll}"
    if width >= 1024:
        box = page.locator("#wrap-save").bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, f"wrap-up below the fold at {width}x{height}"
    expect(page.locator("#shortcuts")).to_contain_text("Next contact")
    shot(page, f"agent-desk-{width}")


def test_household_candidates_show_what_tells_them_apart(desk, live_server, cti_token):
    landline = "+12125550111"
    ana, rui = CustomerFactory(display_name="Ana Silva"), CustomerFactory(display_name="Rui Silva")
    for person in (ana, rui):
        IdentityFactory(customer=person, kind="phone", value=landline, normalized=landline)
    IdentityFactory(customer=ana, kind="account", value="GF-551234", normalized="GF551234", verified_at=timezone.now())
    IdentityFactory(customer=rui, kind="email", value="rui@silva.example", normalized="rui@silva.example")
    page = desk()

    post_call(live_server, cti_token, event="ringing", phone=landline, call_id="call-house")

    candidates = page.locator("#c-candidates button")
    expect(candidates).to_have_count(2, timeout=POP_WAIT_MS)
    expect(candidates.nth(0)).to_contain_text("Ana Silva — holds this phone number")
    expect(candidates.nth(0)).to_contain_text("account ending 1234 · no contact yet")
    expect(candidates.nth(1)).to_contain_text("e-mail at silva.example · no contact yet")
