"""Raw delimited files: the table read_table gives equals the csv module's reading of the file, whichever
parser read it; pandas' C parser is kept only where it cannot hide a short row, and reads the usual files."""

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from recbole_tmcdr.data import ScenarioDataError
from recbole_tmcdr.data.raw_sources import tables
from recbole_tmcdr.data.raw_sources.tables import read_table


def csv_reading(data: bytes, sep: str, has_header: bool):
    """The reference: the csv module record by record, fields stripped, blank records skipped, with the line
    each record ends on."""
    quoting = csv.QUOTE_NONE if sep == '\t' else csv.QUOTE_MINIMAL
    text = io.TextIOWrapper(io.BytesIO(data), encoding='utf-8-sig', newline='')
    reader = csv.reader(text, delimiter=sep, quoting=quoting)
    records = []
    for rec in reader:
        rec = [x.strip() for x in rec]
        if rec and rec != ['']:
            records.append((rec, reader.line_num))
    header = records.pop(0)[0] if has_header and records else None
    return header, [rec for rec, _ in records], [line for _, line in records]


def table_reading(path, sep, has_header):
    t = read_table(str(path), sep, has_header)
    return t.header, [t.fields.iloc[i, :t.counts[i]].tolist() for i in range(len(t))], t.lines.tolist()


PLAIN = st.text(alphabet='ab1. ', max_size=3)
ODD = st.sampled_from(['', ' ', '""', '"x"', '"a,b"', '"a\tb"', '"a\nb"', '"a\r\nb"', '"open', '"ab"c', 'a"b',
                       '\x00', '\xa0é', '\x0c'])


@st.composite
def delimited_files(draw):
    sep = draw(st.sampled_from([',', '\t', ';']))
    width = draw(st.integers(1, 4))
    field = ODD | PLAIN if draw(st.booleans()) else PLAIN
    regular = draw(st.booleans())  # every row as wide as the first: what pandas' C parser keeps
    sizes = st.just(width) if regular else st.integers(0, width + 2)
    rows = draw(st.lists(sizes.flatmap(lambda n: st.lists(field, min_size=n, max_size=n)), max_size=8))
    newline = draw(st.sampled_from(['\n', '\r\n', '\r']))
    text = newline.join(sep.join(row) for row in rows) + draw(st.sampled_from(['', newline]))
    return sep, draw(st.sampled_from([b'', b'\xef\xbb\xbf'])) + text.encode('utf-8'), draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=delimited_files())
def test_read_table_equals_the_csv_module_reading(tmp_path_factory, case):
    sep, data, has_header = case
    path = tmp_path_factory.mktemp('raw') / 'f.txt'
    path.write_bytes(data)
    assert table_reading(path, sep, has_header) == csv_reading(data, sep, has_header)


def test_the_usual_files_are_read_by_pandas_c_parser():
    assert tables._read_with_pandas(b'1\t10\t5\n2\t11\t4', '\t', csv.QUOTE_NONE) is not None
    assert tables._read_with_pandas(b'user_id,item_id\r\n u1 ,"i,1"\nu2,i2\n', ',', csv.QUOTE_MINIMAL) is not None
    for unclear in (b'a,b\n\nc,d\n', b'a,b\nc,\n', b'a,b\nc\n', b'a,b\nc,d,e\n', b'a,"b\nc",d\n', b'a,b\x00c\n',
                    b'a,"b\n', b'\xffa,b\n'):
        assert tables._read_with_pandas(unclear, ',', csv.QUOTE_MINIMAL) is None, unclear


def test_a_short_row_is_told_from_an_empty_last_field(tmp_path):
    path = tmp_path / 'a.tsv'
    path.write_bytes(b'u1\ti1\t5\nu2\ti2\t\nu3\ti3\n\nu4\ti4\t5\t\n')
    table = read_table(str(path), '\t', has_header=False)
    assert table.counts.tolist() == [3, 3, 2, 4] and table.lines.tolist() == [1, 2, 3, 5]
    with pytest.raises(ScenarioDataError) as error:
        table.check_field_counts((3,), 'user, item, rating')
    assert str(error.value).endswith("a.tsv, line 3: expected 3 tab-separated fields (user, item, rating), found 2: "
                                     "['u3', 'i3']. (2 malformed line(s) in total.)")
