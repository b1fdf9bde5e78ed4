"""Query lookups the ORM lacks."""

from __future__ import annotations

from django.db import models
from django.db.models.fields.related import ForeignObject
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


class _ArrayParameter:
    """`column = ANY(%s)` with the values as one array parameter on PostgreSQL; `IN (...)` elsewhere.

    For the key sets of a bulk import's batch (thousands of values): as an `IN (...)` list,
    psycopg re-parses a query of thousands of placeholders on every call, and every batch's
    query text differs (0.3 s per 10,000 rows, profiled).
    """

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        _, rhs_params = self.process_rhs(compiler, connection)  # EmptyResultSet for no values, as `in`
        return f"{lhs} = ANY(%s)", (*lhs_params, list(rhs_params))


@models.Field.register_lookup
class AnyOf(_ArrayParameter, In):
    """`field__any=values`."""

    lookup_name = "any"


@ForeignObject.register_lookup
class RelatedAnyOf(_ArrayParameter, RelatedIn):
    """`customer_id__any=ids` on a foreign key."""

    lookup_name = "any"
