"""A small realistic world for the demo: staff, a few hundred customers, months of contacts.

Idempotent: staff are created or reset, and the customer world is built once
(detected by the first demo account number), so running it twice duplicates nothing.
"""

import datetime as dt
import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from crm import tokens
from crm.models import (
    Case,
    CaseKind,
    CaseStatus,
    Channel,
    ContactReason,
    Customer,
    Fact,
    Feedback,
    FeedbackStatus,
    FollowUp,
    FollowUpKind,
    FollowUpStatus,
    Identity,
    Interaction,
    Outcome,
    Preference,
    Recognition,
    StaffProfile,
    Team,
)

DEMO_PASSWORD = "goldfish-demo"
FIRST_ACCOUNT = "GF100000"
FIRST_NAMES = (
    "Alice", "Bob", "Carmen", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jamal", "Kofi", "Lena", "Marta",
    "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes", "Xenia", "Yusuf", "Zoe",
    "Aiko", "Bruno", "Chloe", "Diego", "Emeka", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lucia", "Milo",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Smith", "Garcia", "Chen", "Novak", "Haddad", "Kowalski", "Silva", "Nguyen", "Brown", "Rossi",
    "Ivanova", "Murphy", "Tanaka", "Schmidt", "Dubois", "Hansen", "Patel", "Costa", "Jensen", "Moreau", "Walsh",
)  # fmt: skip
SUMMARIES = {
    "billing": "Explained the latest bill and the pro-rata charge.",
    "payment": "Refund of the duplicate payment arranged.",
    "technical_fault": "Broadband drops in the evening; ran line test, booked check.",
    "outage": "Confirmed local outage, gave estimated fix time.",
    "order_status": "Router delivery delayed; gave tracking number.",
    "account_change": "Updated the billing address.",
    "cancellation": "Discussed cancellation; offered a better tariff.",
    "complaint": "Customer unhappy about repeated faults; apologised.",
    "new_service": "Upgraded to the fibre plan.",
    "appointment": "Engineer visit booked for Tuesday morning.",
    "general": "Answered a general question about the service.",
}
PRAISE = (
    "Sorted it in minutes, thank you!",
    "Really patient and helpful, fixed my bill.",
    "Friendly and quick, best call I've had with you.",
    "Knew my history, didn't have to repeat myself.",
)
COMPLAINTS = (
    "Third time calling about the same fault.",
    "Waited 40 minutes and nothing was fixed.",
    "Nobody called me back as promised.",
)
FACT_SAMPLES = [
    ("router_model", ["HG-612", "Hub 6", "FritzBox 7590"]),
    ("address_confirmed", ["yes"]),
    ("vehicle", ["Blue Ford Focus", "Red Toyota Yaris"]),
    ("product_serial", ["SN-4471-AB", "SN-9920-XC", "SN-1038-KD"]),
    ("called_name", ["Jim", "Liz", "Bea"]),
]


class Command(BaseCommand):
    help = "Create demo staff and a small world of customers and contacts (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=300)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, customers: int, seed: int, **options):
        staff = self.create_staff()
        if Identity.objects.filter(kind="account", normalized=FIRST_ACCOUNT).exists():
            self.stdout.write("Demo customers already present; nothing added.")
        else:
            with transaction.atomic():
                created = self.create_world(random.Random(seed), customers, staff)
            self.stdout.write(f"Created {created['customers']} customers and {created['interactions']} contacts.")
        self.print_logins(staff)

    def create_staff(self) -> dict:
        User = get_user_model()
        groups = {name: Group.objects.get(name=name) for name in ("agent", "supervisor", "integration")}

        def user(username, first, last, role=None, superuser=False):
            obj, _ = User.objects.get_or_create(username=username)
            obj.first_name, obj.last_name = first, last
            obj.email = f"{username}@goldfish.example"
            obj.is_staff = superuser or role == "supervisor"
            obj.is_superuser = superuser
            obj.set_password(DEMO_PASSWORD)
            obj.save()
            if role:
                obj.groups.add(groups[role])
            return obj

        admin = user("admin", "Ada", "Admin", superuser=True)
        sofia = user("sofia", "Sofia", "Reyes", "supervisor")
        marcus = user("marcus", "Marcus", "Bell", "supervisor")
        north, _ = Team.objects.update_or_create(name="North", defaults={"supervisor": sofia})
        south, _ = Team.objects.update_or_create(name="South", defaults={"supervisor": marcus})
        agents = []
        for username, first, last, team in [
            ("jane", "Jane", "Doyle", north),
            ("omar", "Omar", "Farouk", north),
            ("li", "Li", "Wei", south),
            ("priya", "Priya", "Nair", south),
        ]:
            agent = user(username, first, last, "agent")
            StaffProfile.objects.update_or_create(user=agent, defaults={"team": team, "supervisor": team.supervisor})
            agents.append(agent)
        for sup, team in ((sofia, north), (marcus, south)):
            StaffProfile.objects.update_or_create(user=sup, defaults={"team": team, "supervisor": None})
        cti = user("cti", "CTI", "Connector", "integration")
        # Tokens are stored hashed, so the demo's is re-issued (the last run's revoked) and printed.
        tokens.revoke_all(cti)
        token, _ = tokens.issue(cti)
        return {"admin": admin, "supervisors": [sofia, marcus], "agents": agents, "cti": cti, "cti_token": token}

    def create_world(self, rng: random.Random, count: int, staff: dict) -> dict:
        now = timezone.now()
        reasons = list(ContactReason.objects.filter(active=True))
        agents = staff["agents"]
        customers, identities = [], []
        household_phone = None
        for n in range(count):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            customer = Customer(
                display_name=name,
                preferred_name=name.split()[0],
                language=rng.choice(["en", "en", "en", "es", "fr"]),
                tier="vip" if n % 17 == 0 else "standard",
            )
            customers.append(customer)
            # Every tenth customer shares the previous one's phone: a household.
            if n % 10 == 1 and household_phone:
                phone = household_phone
            else:
                phone = f"+1212555{n:04d}"[:12] if n < 10000 else f"+1646555{n % 10000:04d}"
            household_phone = phone
            identities.append(Identity(customer=customer, kind="phone", value=phone, normalized=phone, source="import"))
            email = f"{name.lower().replace(' ', '.')}{n}@example.com"
            identities.append(Identity(customer=customer, kind="email", value=email, normalized=email, source="import"))
            account = f"GF{100000 + n}"
            identities.append(
                Identity(
                    customer=customer,
                    kind="account",
                    value=account,
                    normalized=account,
                    verified_at=now - dt.timedelta(days=200),
                    source="import",
                )
            )
        Customer.objects.bulk_create(customers)
        Identity.objects.bulk_create(identities)
        # Created months ago, except a handful of new customers.
        for i, customer in enumerate(customers):
            customer.created_at = now - dt.timedelta(days=rng.randint(1, 20) if i % 25 == 3 else rng.randint(60, 900))
        Customer.objects.bulk_update(customers, ["created_at"])

        interactions, facts, prefs, cases = [], [], [], []
        for i, customer in enumerate(customers):
            contacts = rng.randint(0, 12)
            repeat_reason = rng.choice(reasons) if i % 8 == 0 else None
            for k in range(contacts):
                started = now - dt.timedelta(days=rng.randint(1, 180), minutes=rng.randint(0, 600))
                reason = rng.choice(reasons)
                interactions.append(
                    Interaction(
                        customer=customer,
                        channel=rng.choice([Channel.PHONE, Channel.PHONE, Channel.CHAT, Channel.EMAIL]),
                        started_at=started,
                        ended_at=started + dt.timedelta(minutes=rng.randint(2, 25)),
                        agent=rng.choice(agents),
                        reason=reason,
                        summary=SUMMARIES.get(reason.code, ""),
                        outcome=rng.choice([Outcome.RESOLVED, Outcome.RESOLVED, Outcome.UNRESOLVED, Outcome.FOLLOW_UP]),
                        source="seed",
                        external_id=f"seed-{i}-{k}",
                    )
                )
            if repeat_reason is not None:
                # The same problem brought them back three times in the last fortnight.
                case = Case(
                    customer=customer,
                    subject=f"Recurring: {repeat_reason.label}",
                    reason=repeat_reason,
                    status=CaseStatus.OPEN,
                    opened_at=now - dt.timedelta(days=14),
                    due_at=now + dt.timedelta(days=2),
                )
                cases.append(case)
                for k in range(3):
                    started = now - dt.timedelta(days=12 - 5 * k, hours=rng.randint(0, 8))
                    interactions.append(
                        Interaction(
                            customer=customer,
                            channel=Channel.PHONE,
                            started_at=started,
                            ended_at=started + dt.timedelta(minutes=9),
                            agent=rng.choice(agents),
                            reason=repeat_reason,
                            summary=SUMMARIES.get(repeat_reason.code, ""),
                            outcome=Outcome.UNRESOLVED,
                            case=case,
                            source="seed",
                            external_id=f"seed-{i}-repeat-{k}",
                        )
                    )
            if i % 3 == 0:
                key, values = FACT_SAMPLES[i % len(FACT_SAMPLES)]
                facts.append(
                    Fact(
                        customer=customer,
                        key=key,
                        value=rng.choice(values),
                        channel=Channel.PHONE,
                        recorded_at=now - dt.timedelta(days=rng.randint(5, 100)),
                        recorded_by=rng.choice(agents),
                    )
                )
            if i % 4 == 0:
                prefs.append(
                    Preference(
                        customer=customer,
                        key="preferred_channel",
                        value=rng.choice(["email", "sms", "phone"]),
                        recorded_at=now - dt.timedelta(days=rng.randint(5, 100)),
                    )
                )
            if i % 29 == 5:
                prefs.append(Preference(customer=customer, key="do_not_call", value="true", recorded_at=now))
            if i % 11 == 2:
                prefs.append(Preference(customer=customer, key="callback_window", value="18:00-20:00", recorded_at=now))
        Case.objects.bulk_create(cases)
        Interaction.objects.bulk_create(interactions, batch_size=1000)
        Fact.objects.bulk_create(facts)
        Preference.objects.bulk_create(prefs)
        twins = self.create_duplicates(rng, customers, agents)
        self.create_feedback_samples(rng, interactions)
        return {"customers": len(customers) + twins, "interactions": len(interactions)}

    def create_feedback_samples(self, rng: random.Random, interactions: list) -> None:
        """Survey answers on some contacts, with the praise and follow-ups the workflows would have made,
        so the supervisors' queues and reports (/admin/) show something in the demo."""
        now = timezone.now()
        sampled = [i for i in interactions if i.customer_id and rng.random() < 0.12]
        for n, contact in enumerate(sampled):
            rating = rng.choice([5, 5, 5, 4, 4, 3, 2, 1])
            happy = rating >= 4
            received = contact.started_at + dt.timedelta(hours=2)
            feedback = Feedback.objects.create(
                interaction=contact,
                customer_id=contact.customer_id,
                rating=rating,
                nps=rng.choice([9, 10, 10, 8]) if happy else rng.choice([0, 3, 5, 6, 7]),
                text=rng.choice(PRAISE) if happy else rng.choice(COMPLAINTS),
                staff_named=[contact.agent.username] if happy and contact.agent else [],
                sentiment="positive" if happy else ("neutral" if rating == 3 else "negative"),
                status=FeedbackStatus.PROCESSED,
                received_at=received,
                processed_at=received,
            )
            if happy and contact.agent and n % 2 == 0:
                recognition = Recognition.objects.create(
                    feedback=feedback, staff=contact.agent, interaction=contact, quote=feedback.text
                )
                Recognition.objects.filter(pk=recognition.pk).update(created_at=received)
            if rating <= 2:
                # Older ones were done in time, or missed and escalated; recent ones are still open.
                late = received < now - dt.timedelta(days=3)
                status = (
                    FollowUpStatus.OPEN if not late else (FollowUpStatus.DONE if n % 3 else FollowUpStatus.ESCALATED)
                )
                done = status == FollowUpStatus.DONE
                case = Case.objects.create(
                    customer_id=contact.customer_id,
                    subject="Service recovery: unhappy customer",
                    kind=CaseKind.SERVICE_RECOVERY,
                    reason=contact.reason,
                    status=CaseStatus.RESOLVED if done else CaseStatus.OPEN,
                    opened_at=received,
                    due_at=received + dt.timedelta(hours=24),
                    resolved_at=received + dt.timedelta(hours=20) if done else None,
                    owner=contact.agent,
                )
                feedback.case = case
                feedback.save(update_fields=["case"])
                FollowUp.objects.create(
                    kind=FollowUpKind.SERVICE_RECOVERY,
                    status=status,
                    customer_id=contact.customer_id,
                    feedback=feedback,
                    case=case,
                    owner=contact.agent,
                    due_at=received + dt.timedelta(hours=24),
                    completed_at=received + dt.timedelta(hours=20) if status == FollowUpStatus.DONE else None,
                    escalated_at=received + dt.timedelta(hours=24) if status == FollowUpStatus.ESCALATED else None,
                    escalation_level=1 if status == FollowUpStatus.ESCALATED else 0,
                )

    def create_duplicates(self, rng: random.Random, customers: list, agents: list) -> int:
        """A few people entered twice (another spelling, a new account, the same e-mail or phone),
        so the supervisors' duplicates view (/admin/crm/customer/duplicates/) has work to show."""
        now = timezone.now()
        made = 0
        for n, original in enumerate(customers[5:50:9]):
            first, _, last = original.display_name.partition(" ")
            twin = Customer.objects.create(
                display_name=f"{first} {last.upper()}" if n % 2 else f"{first[0]}. {last}",
                preferred_name=first,
                language=original.language,
            )
            shared = Identity.objects.filter(customer=original, kind="email" if n % 2 else "phone").first()
            account = f"GF9{n:05d}"
            Identity.objects.bulk_create(
                [
                    Identity(customer=twin, kind=shared.kind, value=shared.value, normalized=shared.normalized),
                    Identity(customer=twin, kind="account", value=account, normalized=account, source="web"),
                ]
            )
            Preference.objects.create(
                customer=twin, key="preferred_channel", value=rng.choice(["sms", "email"]), recorded_at=now
            )
            for k in range(2):
                started = now - dt.timedelta(days=rng.randint(1, 30))
                Interaction.objects.create(
                    customer=twin,
                    channel=Channel.CHAT,
                    started_at=started,
                    ended_at=started + dt.timedelta(minutes=6),
                    agent=rng.choice(agents),
                    reason=ContactReason.objects.get(code="billing"),
                    summary=SUMMARIES["billing"],
                    outcome=Outcome.RESOLVED,
                    source="seed",
                    external_id=f"seed-twin-{n}-{k}",
                )
            made += 1
        return made

    def print_logins(self, staff: dict) -> None:
        out = self.stdout.write
        out("")
        out(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        out("  admin                 superuser          /admin/")
        for sup in staff["supervisors"]:
            out(f"  {sup.username:<21} supervisor         /admin/")
        for agent in staff["agents"]:
            out(f"  {agent.username:<21} agent              /agent/")
        out(f"  {staff['cti'].username:<21} integration (CTI)  token {staff['cti_token']}")
        sample = Identity.objects.filter(kind="phone", customer__erased_at__isnull=True).order_by("normalized").first()
        if sample is not None:
            out(f"Sample caller: {sample.normalized}")
