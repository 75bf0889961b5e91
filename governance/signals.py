"""Signals by which the ground layer tells the layers above it that something was set up.

`category_created` is sent inside the creating transaction; the cases app answers it by creating the
category's default queues, so a category never exists without somewhere for its cases to wait.
"""

from django.dispatch import Signal

# Sent with: category, user, create_default_queues (bool)
category_created = Signal()
