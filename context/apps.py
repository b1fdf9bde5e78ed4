from django.apps import AppConfig


class ContextConfig(AppConfig):
    name = "context"
    verbose_name = "Screen-pop lookup"

    def ready(self):
        from context import recognitions

        recognitions.connect()  # issue 12: praise reaches the agent's page live
