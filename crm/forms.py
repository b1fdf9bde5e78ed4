"""The public feedback form: the same rules as POST /api/v1/feedback, for people rather than programs."""

from __future__ import annotations

from typing import Any

from django import forms

from crm.identifiers import InvalidIdentifier, normalize

RATING_CHOICES = [(str(n), label) for n, label in ((5, "5 — excellent"), (4, "4"), (3, "3"), (2, "2"), (1, "1 — poor"))]
# issue 13: NPS is a 0-10 scale of radio buttons (no answer = none ticked), not a dropdown.
NPS_CHOICES = [(str(n), str(n)) for n in range(11)]


class TelInput(forms.TextInput):
    """type="tel": the phone keypad on mobiles (a TextInput with attrs type would render two types)."""

    input_type = "tel"


class FeedbackForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="How was your experience?",
        choices=RATING_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )
    nps = forms.TypedChoiceField(
        label="How likely are you to recommend us to a friend (0 to 10)?",
        choices=NPS_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        widget=forms.RadioSelect,
    )
    text = forms.CharField(
        label="Tell us what happened",
        help_text="Mention the person who helped you by name if you like.",
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    email = forms.CharField(
        label="E-mail address (optional)",
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    phone = forms.CharField(
        label="Phone number (optional)",
        max_length=64,
        required=False,
        widget=TelInput(attrs={"autocomplete": "tel"}),
    )
    account = forms.CharField(label="Account number (optional)", max_length=64, required=False)
    contact_consent = forms.BooleanField(label="You may e-mail me about this feedback", required=False)
    interaction_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    staff = forms.CharField(max_length=400, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Errors and help are announced with the field they belong to.
        for name, field in self.fields.items():
            described = []
            if field.help_text:
                described.append(f"id_{name}_help")
            if self.is_bound and name in self.errors:
                described.append(f"id_{name}_error")
                field.widget.attrs["aria-invalid"] = "true"
            if described:
                field.widget.attrs["aria-describedby"] = " ".join(described)

    def _identifier(self, kind: str) -> str:
        value = (self.cleaned_data.get(kind) or "").strip()
        if value:
            try:
                normalize(kind, value)
            except InvalidIdentifier as exc:
                raise forms.ValidationError(exc.message) from None
        return value

    def clean_email(self) -> str:
        return self._identifier("email")

    def clean_phone(self) -> str:
        return self._identifier("phone")

    def clean_account(self) -> str:
        return self._identifier("account")

    def clean(self):
        data = super().clean()
        if data.get("rating") is None and data.get("nps") is None and not (data.get("text") or "").strip():
            raise forms.ValidationError("Choose a rating, a score or write a few words.")
        return data

    def submission(self) -> dict[str, Any]:
        """Keyword arguments for feedback_submit."""
        data = self.cleaned_data
        return {
            "interaction_id": data.get("interaction_id"),
            "email": data.get("email") or None,
            "phone": data.get("phone") or None,
            "account": data.get("account") or None,
            "rating": data.get("rating"),
            "nps": data.get("nps"),
            "text": data.get("text") or "",
            "staff": [s for s in (data.get("staff") or "").split(",") if s.strip()][:10],
            "contact_consent": bool(data.get("contact_consent")),
        }
