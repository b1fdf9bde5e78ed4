from django.apps import AppConfig


class ContextConfig(AppConfig):
    name = "context"
    verbose_name = "Screen-pop lookup"

    def ready(self) -> None:
        from context import events, recognitions
        from crm.privacy import customer_erased

        recognitions.connect()  # issue 12: praise reaches the agent's page live
        # issue 10: an erasure also removes the agent pages' cached cards (crm does not know them).
        customer_erased.connect(events.cards_forget, dispatch_uid="context.events.cards_forget")
