"""The demo order system, served by the app itself under /demo/orders/ (ACTIONS_DEMO_ORDERS).

The demo tenant's actions call it over HTTP like any company system (apps/actions/demo_orders.py);
its orders live in this process's memory and reset on restart.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.actions.demo_orders import DEMO_TOKEN, OrderBook

BOOK = OrderBook(token=DEMO_TOKEN)


@csrf_exempt
def demo_orders(request: HttpRequest, path: str = "") -> JsonResponse:
    if not settings.ACTIONS_DEMO_ORDERS:
        raise Http404("The demo order system is off (ACTIONS_DEMO_ORDERS).")
    status, payload = BOOK.handle(
        request.method or "GET",
        path,
        request.GET.dict(),
        request.body,
        request.headers.get("Authorization"),
    )
    return JsonResponse(payload, status=status)
