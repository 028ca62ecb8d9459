"""Function catalogues: which functions a read may call, and what the others do.

A function is known-safe only when it is listed here for the dialect. Names are lower case:
for functions sqlglot knows, its canonical name (``now()`` is ``current_timestamp``); for
functions it does not know (``exp.Anonymous``), the name as written.
"""

from __future__ import annotations

from .types import Category, Risk

# Canonical sqlglot names of pure functions (no side effects, no I/O) plus operators sqlglot
# models as functions (AND, OR, CASE, CAST, EXISTS ...).
_SQLGLOT_SAFE = """
and or xor case if cast try_cast cast_to_str_type convert collate exists filter
count count_if sum avg min max any_value median mode stddev stddev_pop stddev_samp variance
variance_pop covar_pop covar_samp corr approx_distinct percentile_cont percentile_disc
array_agg group_concat string_agg logical_and logical_or bitwise_and_agg bitwise_or_agg
bitwise_xor_agg grouping grouping_id first last first_value last_value nth_value lag lead
row_number rank dense_rank percent_rank cume_dist ntile
regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
coalesce nullif greatest least nvl2 decode decode_case
abs ceil floor round trunc sign sqrt cbrt exp ln log power mod pi degrees radians rand random
sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh cot factorial width_bucket
safe_divide is_nan is_inf
lower upper initcap length bit_length byte_length substring substring_index left right trim
pad concat concat_ws replace reverse repeat space str_position split split_part ascii chr
unicode translate overlay format md5 md5_digest sha sha2 hex unhex lower_hex to_base64
from_base64 encode levenshtein soundex starts_with ends_with contains regexp_like regexp_i_like
regexp_replace regexp_extract regexp_extract_all regexp_substr regexp_count regexp_instr
regexp_split string_to_array array_to_string number_to_str to_char to_number uuid
current_date current_time current_timestamp current_datetime localtime localtimestamp
current_user session_user current_schema current_database current_catalog current_role
current_schemas current_version utc_date utc_time utc_timestamp systimestamp
date time timestamp datetime date_add date_sub date_diff datediff date_trunc timestamp_trunc
datetime_trunc time_trunc timestamp_add timestamp_sub timestamp_diff timestampdiff datetime_add
datetime_sub datetime_diff time_add time_sub time_diff date_bin extract day month year hour
minute second quarter week week_of_year day_of_week day_of_month day_of_year dayname
monthname last_day add_months months_between next_day make_interval justify_days
justify_hours justify_interval
str_to_date str_to_time str_to_unix time_to_str time_str_to_date time_str_to_time
time_str_to_unix time_to_time_str time_to_unix unix_to_str unix_to_time unix_to_time_str
date_str_to_date date_to_date_str ts_or_ds_add ts_or_ds_diff ts_or_ds_to_date
ts_or_ds_to_date_str ts_or_ds_to_timestamp ts_or_ds_to_datetime ts_or_ds_to_time unix_date
unix_seconds unix_millis unix_micros to_days convert_timezone
json_extract json_extract_scalar json_extract_array jsonb_extract jsonb_extract_scalar
jsonb_contains jsonb_exists json_format json_keys json_type json_strip_nulls parse_json
json_array_contains j_s_o_n_array j_s_o_n_array_agg j_s_o_n_object j_s_o_n_object_agg
j_s_o_n_b_object_agg j_s_o_n_exists j_s_o_n_b_path_exists j_s_o_n_b_contains_top_key
j_s_o_n_b_contains_any_top_keys j_s_o_n_b_contains_all_top_keys j_s_o_n_cast j_s_o_n_bool
json_set json_remove json_array_append json_array_insert
array array_contains array_contained_by array_overlaps array_size array_concat array_append
array_prepend array_remove array_position array_slice array_reverse array_sort array_distinct
array_first array_last array_max array_min array_sum array_intersect array_except
array_contains_all arrays_zip unnest explode generate_series exploding_generate_series
struct struct_extract map map_keys typeof
"""

# Functions sqlglot does not model (they stay exp.Anonymous) that are pure, per dialect.
_POSTGRES_SAFE = """
now age date_part to_timestamp to_date clock_timestamp statement_timestamp
transaction_timestamp timeofday isfinite make_date make_time make_timestamp make_timestamptz
to_json to_jsonb row_to_json array_to_json json_build_object jsonb_build_object
json_build_array jsonb_build_array json_agg jsonb_agg json_object_agg jsonb_object_agg
json_each jsonb_each json_each_text jsonb_each_text json_array_elements jsonb_array_elements
json_array_elements_text jsonb_array_elements_text json_object_keys jsonb_object_keys
json_array_length jsonb_array_length jsonb_pretty jsonb_typeof json_typeof jsonb_set
jsonb_insert jsonb_strip_nulls jsonb_path_query jsonb_path_query_array jsonb_path_query_first
jsonb_path_match json_extract_path json_extract_path_text jsonb_extract_path
jsonb_extract_path_text json_populate_record jsonb_populate_record json_to_record
jsonb_to_record
array_length array_lower array_upper array_ndims array_dims cardinality array_cat
array_fill array_replace
btrim ltrim rtrim lpad rpad strpos char_length character_length octet_length quote_ident
quote_literal quote_nullable regexp_match regexp_matches regexp_split_to_array
regexp_split_to_table to_hex sha224 sha256 sha384 sha512 digest encode decode
string_to_table textcat bool_and bool_or every div mod numeric scale trim_scale gcd lcm
log10 ceiling trunc
pg_typeof format_type pg_get_viewdef pg_get_indexdef pg_get_constraintdef pg_get_expr
pg_get_functiondef pg_get_triggerdef pg_get_userbyid pg_table_is_visible pg_relation_size
pg_total_relation_size pg_table_size pg_indexes_size pg_size_pretty pg_database_size
pg_column_size pg_backend_pid pg_postmaster_start_time obj_description col_description
has_table_privilege has_column_privilege has_schema_privilege has_database_privilege
current_setting version inet_client_addr inet_server_addr currval lastval
generate_subscripts range_agg lower_inf upper_inf isempty int4range int8range numrange
tsrange tstzrange daterange to_tsvector to_tsquery plainto_tsquery phraseto_tsquery
websearch_to_tsquery ts_rank ts_rank_cd ts_headline
"""

_MYSQL_SAFE = """
now curdate curtime sysdate ifnull isnull if date_format from_unixtime unix_timestamp
timestampadd datediff dayofweek dayofmonth dayofyear weekday yearweek makedate maketime
sec_to_time time_to_sec period_add period_diff convert_tz str_to_date get_format
json_unquote json_quote json_contains json_contains_path json_depth json_length json_valid
json_object json_array json_arrayagg json_objectagg json_search json_merge_patch
json_merge_preserve json_pretty json_overlaps json_value json_table
char_length character_length octet_length locate instr lcase ucase lpad rpad ltrim rtrim
mid field find_in_set elt make_set export_set quote strcmp char conv bin oct ord
crc32 sha1 sha2 truncate ceiling log10 log2 bit_count inet_aton inet_ntoa
database schema user system_user version connection_id found_rows row_count charset
collation coercibility uuid_short bit_and bit_or bit_xor std
"""

_SQLITE_SAFE = """
ifnull iif instr ltrim rtrim char hex quote printf format unicode likely unlikely
likelihood zeroblob randomblob total total_changes changes date time datetime julianday
strftime unixepoch timediff json json_array json_object json_extract json_type json_valid
json_quote json_patch json_insert json_replace json_set json_remove json_group_array
json_group_object json_each json_tree json_array_length sqlite_version
"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: SQLite pragmas that only describe the schema (``PRAGMA x`` and the table-valued function
#: ``pragma_x(...)``). The others read data (integrity_check, foreign_key_check) or state.
SQLITE_SCHEMA_PRAGMAS = _words(
    """table_info table_xinfo table_list index_list index_info index_xinfo foreign_key_list
    database_list collation_list function_list module_list pragma_list"""
)

_COMMON = _words(_SQLGLOT_SAFE)

SAFE_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgres": _COMMON | _words(_POSTGRES_SAFE),
    "mysql": _COMMON | _words(_MYSQL_SAFE),
    "sqlite": _COMMON
    | _words(_SQLITE_SAFE)
    | frozenset("pragma_" + name for name in SQLITE_SCHEMA_PRAGMAS),
}

# Functions with an effect, and the category that effect belongs to.
_SPECIAL: dict[str, tuple[Category, Risk]] = {}


def _special(category: Category, risk: Risk, names: str) -> None:
    for name in names.split():
        _SPECIAL[name] = (category, risk)


_special(
    Category.SESSION,
    Risk.HIGH,
    """set_config setseed nextval setval pg_advisory_lock pg_advisory_lock_shared
    pg_try_advisory_lock pg_try_advisory_lock_shared pg_advisory_xact_lock
    pg_advisory_xact_lock_shared pg_try_advisory_xact_lock pg_advisory_unlock pg_advisory_unlock_all
    pg_advisory_unlock_shared pg_notify get_lock release_lock release_all_locks
    next_value_for""",
)
_special(
    Category.ADMIN,
    Risk.CRITICAL,
    """pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_switch_wal
    pg_promote pg_create_restore_point pg_drop_replication_slot
    pg_create_physical_replication_slot pg_create_logical_replication_slot
    pg_stat_reset pg_stat_reset_shared pg_stat_reset_single_table_counters
    pg_replication_origin_create pg_backup_start pg_backup_stop""",
)
_special(Category.ADMIN, Risk.HIGH, "pg_sleep pg_sleep_for pg_sleep_until sleep benchmark")
_special(
    Category.FILE,
    Risk.CRITICAL,
    """pg_read_file pg_read_file_old pg_read_binary_file pg_ls_dir pg_stat_file pg_ls_logdir
    pg_ls_waldir pg_ls_tmpdir pg_ls_archive_statusdir pg_file_write pg_file_rename pg_file_unlink
    lo_import lo_export load_file readfile writefile read_csv read_parquet to_file""",
)
_special(Category.WRITE, Risk.MEDIUM, "lo_create lo_creat lo_unlink lo_put lo_from_bytea")
_special(
    Category.CODE,
    Risk.CRITICAL,
    """dblink dblink_exec dblink_connect dblink_connect_u dblink_send_query dblink_open
    dblink_fetch query_to_xml query_to_xmlschema query_to_xml_and_xmlschema table_to_xml
    table_to_xmlschema table_to_xml_and_xmlschema cursor_to_xml schema_to_xml
    database_to_xml load_extension sys_exec sys_eval""",
)

# Schema qualifiers under which a function name still means the built-in function.
SYSTEM_SCHEMAS: dict[str, frozenset[str]] = {
    "postgres": frozenset({"pg_catalog"}),
    "mysql": frozenset(),
    "sqlite": frozenset(),
}


def function_effect(name: str, dialect: str) -> tuple[Category, Risk] | None:
    """What calling ``name`` does: None for a known-safe function.

    >>> function_effect("count", "postgres") is None
    True
    >>> function_effect("pg_read_file", "postgres")
    (<Category.FILE: 'file'>, <Risk.CRITICAL: 'critical'>)
    >>> function_effect("my_func", "postgres")
    (<Category.UNKNOWN: 'unknown'>, <Risk.HIGH: 'high'>)
    """
    special = _SPECIAL.get(name)
    if special is not None:
        return special
    if name in SAFE_FUNCTIONS.get(dialect, _COMMON):
        return None
    return Category.UNKNOWN, Risk.HIGH
