"""API routes of the integrations app, included by supportai/api_urls.py."""

from rest_framework.routers import SimpleRouter

from apps.integrations import api

router = SimpleRouter()
router.register("api-keys", api.ApiKeyViewSet, basename="api-key")
router.register(
    "webhooks/subscriptions", api.WebhookSubscriptionViewSet, basename="webhook-subscription"
)
router.register("webhooks/deliveries", api.WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("events", api.EventViewSet, basename="event")

urlpatterns = router.urls
