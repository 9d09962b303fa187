"""What every app's admin shares."""


def adopt_created(obj, created) -> None:
    """Make the admin's unsaved `obj` the row a service created, so the admin goes on with `obj`.

    A ModelAdmin saves its own instance; ours save through services, which
    create their own. Copying the created row's fields over keeps Django's
    change message, redirect and inlines working on the right row.
    """
    for field in type(obj)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False
