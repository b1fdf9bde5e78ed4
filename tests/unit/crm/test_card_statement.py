"""The card's statement stays small enough for psycopg to cache its parsed form (issue 12 found it 70 chars over).

Over psycopg's limit, every lookup re-parses the ~4 KB text in Python (about 0.35 ms measured
here, as much as the rest of the lookup's client time), silently.
"""

from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

from crm import card


def test_the_card_statement_fits_psycopgs_query_cache():
    assert len(card._CONTACT_SQL) <= MAX_CACHED_STATEMENT_LENGTH, len(card._CONTACT_SQL)
