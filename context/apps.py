from django.apps import AppConfig


class ContextConfig(AppConfig):
    name = "context"
    verbose_name = "Screen-pop lookup"

    def ready(self) -> None:
        # issue 10: an erasure also removes the agent pages' cached cards (crm does not know them).
        from context import events
        from crm.privacy import customer_erased

        customer_erased.connect(events.cards_forget, dispatch_uid="context.events.cards_forget")
