"""Signals by which the ground layer tells the layers above it that something was set up or changed.

`category_created` is sent inside the creating transaction; the cases app answers it by creating the
category's default queues, so a category never exists without somewhere for its cases to wait.

`category_paused` and `category_resumed` are sent inside the pausing or resuming transaction; the cases app,
which knows who works the category's queues, tells those people once it commits.
"""

from django.dispatch import Signal

# Sent with: category, user, create_default_queues (bool)
category_created = Signal()

# Sent with: category, user (None: the system), reason
category_paused = Signal()
category_resumed = Signal()
