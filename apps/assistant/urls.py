from django.urls import path

from apps.assistant import views

urlpatterns = [
    path("chat/ask", views.ask, name="chat-ask"),
    path("chat/stream", views.stream, name="chat-stream"),
    path("chat/confirm", views.confirm, name="chat-confirm"),
    path("demo/", views.demo, name="demo"),
]
