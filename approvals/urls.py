from django.urls import path

from approvals import views

urlpatterns = [
    path("", views.queue, name="approval_queue"),
    path("history/", views.decided, name="approval_history"),
    path("mine/", views.mine, name="approval_mine"),
    path("access/", views.request_access, name="access_request"),
    path("unmask/", views.request_unmask, name="unmask_request"),
    path("<int:pk>/", views.detail, name="approval_detail"),
    path("<int:pk>/review/", views.review, name="approval_review"),
    path("<int:pk>/withdraw/", views.withdraw, name="approval_withdraw"),
    path("policies/", views.policy_list, name="approval_policy_list"),
    path("policies/new/", views.policy_edit, name="approval_policy_create"),
    path("policies/<int:pk>/", views.policy_edit, name="approval_policy_edit"),
    path("policies/<int:pk>/delete/", views.policy_remove, name="approval_policy_delete"),
]
