"""OPTIONS: DRF's metadata, for every view, whether or not it names one serializer."""

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    """DRF's `SimpleMetadata`, but a view without a `serializer_class` answers without `actions`.

    Workflow actions (dispatch, pause, enroll_contact…) take their input
    through an input serializer per handler, not the viewset's
    `serializer_class`; DRF would assert on them and answer 500. Their
    bodies are documented in the OpenAPI schema (/api/schema/).
    """

    def determine_actions(self, request, view):
        # Imported here: DRF's APIView loads this class while rest_framework.generics is being imported.
        from rest_framework.generics import GenericAPIView

        names_none = getattr(view, "serializer_class", None) is None
        if names_none and type(view).get_serializer_class is GenericAPIView.get_serializer_class:
            return {}
        return super().determine_actions(request, view)
