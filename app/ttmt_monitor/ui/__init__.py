"""The desktop app (Qt only): main window, table models and views, controller, start-up (see ui/app.py)."""
