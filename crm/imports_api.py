"""Bulk import over HTTP (supervisor): upload a file, then follow its progress and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import api_schema as schema
from crm import imports
from crm.exceptions import NotFound
from crm.models import ImportJob, ImportKind
from crm.permissions import IsSupervisor


class ImportInput(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (with a header line) or JSON Lines, UTF-8.")
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    format = serializers.ChoiceField(choices=imports.FORMATS, required=False, help_text="Default: from the file name.")
    # A form field is text: "true" or "false", nothing else, so a typo never starts a real import.
    dry_run = serializers.ChoiceField(
        choices=["true", "false"],
        required=False,
        default="false",
        help_text="true: validate everything, write nothing.",
    )


def import_out(job: ImportJob) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "dry_run": job.dry_run,
        "file_name": job.file_name,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "rejected": job.rejected,
        "errors": job.errors,
        "warnings": job.warnings,
        "error_file": f"/api/v1/imports/{job.pk}/errors" if job.error_path else None,
        "purged_at": job.purged_at.isoformat() if job.purged_at else None,
    }


class ImportCreateApi(APIView):
    permission_classes = [IsSupervisor]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportInput}, responses={202: schema.ImportAccepted, **schema.errors(415)}
    )
    def post(self, request):
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            file_format = imports.format_for(upload.name, data.validated_data.get("format"))
        except ValueError as exc:
            raise serializers.ValidationError({"format": [str(exc)]}) from None
        try:
            job = imports.import_upload_start(
                actor=request.user,
                upload=upload,
                kind=data.validated_data["kind"],
                file_format=file_format,
                dry_run=data.validated_data["dry_run"] == "true",
            )
        except ValueError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from None
        return Response({"id": str(job.pk)}, status=status.HTTP_202_ACCEPTED)


def _job(import_id) -> ImportJob:
    try:
        return ImportJob.objects.get(pk=import_id)
    except ImportJob.DoesNotExist:
        raise NotFound("No such import.") from None


class ImportDetailApi(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(responses={200: schema.ImportOut})
    def get(self, request, import_id):
        return Response(import_out(_job(import_id)))


class ImportErrorFileApi(APIView):
    """The rejected lines with a reason column: fix them and import this file again."""

    permission_classes = [IsSupervisor]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, import_id):
        job = _job(import_id)
        lines = imports.error_file_committed(job)
        if lines is None:
            raise NotFound("This import rejected no line.")
        response = StreamingHttpResponse(
            lines, content_type="text/csv" if job.file_format == "csv" else "application/x-ndjson"
        )
        response["Content-Length"] = str(lines.size)
        response["Content-Disposition"] = content_disposition_header(
            True, f"{Path(job.file_name).stem}-errors.{job.file_format}"
        )
        return response
