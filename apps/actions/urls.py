"""The demo order system's route (included by supportai/urls.py before the demo page)."""

from django.urls import re_path

from apps.actions import views

urlpatterns = [
    re_path(r"^demo/orders/(?P<path>.*)$", views.demo_orders, name="demo-orders"),
]
