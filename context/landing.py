"""`/` (issue 13): each role to its desk — supervisors to /admin/, agents to /agent/, others to a short menu."""

from __future__ import annotations

from pathlib import Path

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from crm.permissions import is_agent, is_supervisor

FAVICON = Path(__file__).resolve().parent.parent / "crm" / "static" / "crm" / "favicon.png"


@require_GET
def landing(request):
    user = request.user
    if is_supervisor(user):
        return redirect("admin:index")
    if is_agent(user):
        return redirect("agent-page")
    return render(request, "landing.html", {"signed_in": user.is_authenticated})


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request):
    """Browsers ask for /favicon.ico on every page; the PNG answers it (they read the bytes, not the name)."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/png")
