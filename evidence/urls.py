from django.urls import path

from evidence import views

urlpatterns = [
    path("", views.evidence_list, name="evidence_list"),
    path("<int:pk>/", views.evidence_status, name="evidence_status"),
    path("<int:pk>/download/", views.evidence_download, name="evidence_download"),
]
