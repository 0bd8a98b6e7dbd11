from django.urls import path

from apps.workspace import views

app_name = "workspace"

_conversation = "api/<slug:slug>/conversations/<uuid:conversation_id>/"

urlpatterns = [
    path("", views.console_home, name="console_home"),
    path("<slug:slug>/", views.console_page, name="console"),
    path("api/<slug:slug>/queue/", views.queue_json, name="queue"),
    path(_conversation, views.conversation_json, name="conversation"),
    path(f"{_conversation}take-over/", views.take_over, name="take_over"),
    path(f"{_conversation}reply/", views.reply, name="reply"),
    path(f"{_conversation}hand-back/", views.hand_back, name="hand_back"),
    path(f"{_conversation}resolve/", views.resolve, name="resolve"),
    path(f"{_conversation}suggest/", views.suggest, name="suggest"),
]
