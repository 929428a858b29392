-- app.analytics_admin_series as migration 0003 created it. Migrations are history: this text is never edited.
CREATE OR REPLACE FUNCTION app.analytics_admin_series(p_granularity text, p_start timestamptz, p_end timestamptz, p_providers text[], p_models text[], p_statuses text[])
RETURNS TABLE (bucket timestamp, provider text, runs bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric, errors bigint, fallbacks bigint)

LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET work_mem = '64MB'
AS $fn$
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM public.users u WHERE u.id = app.current_user_id() AND u.is_admin
    ) THEN
        RAISE EXCEPTION 'analytics: administrator privileges required'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    IF p_granularity IS NULL OR p_granularity NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'analytics: granularity must be day, week or month'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    RETURN QUERY
    SELECT date_trunc(p_granularity, r.created_at AT TIME ZONE 'UTC'), r.provider::text,

        count(*)::bigint,
        coalesce(sum(r.input_tokens), 0)::bigint,
        coalesce(sum(r.output_tokens), 0)::bigint,
        coalesce(sum(r.cost_usd), 0)::numeric,
        (count(*) FILTER (WHERE r.status = 'error'))::bigint,
        count(r.fallback_from)::bigint

    FROM public.agent_runs r
    WHERE
        r.created_at >= p_start AND r.created_at < p_end
        AND (p_providers IS NULL OR r.provider = ANY (p_providers))
        AND (p_models IS NULL OR r.model = ANY (p_models))
        AND (p_statuses IS NULL OR r.status = ANY (p_statuses))

    GROUP BY 1, 2
    ORDER BY 1, 2;

END
$fn$
