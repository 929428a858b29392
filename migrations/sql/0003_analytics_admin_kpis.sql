-- app.analytics_admin_kpis as migration 0003 created it. Migrations are history: this text is never edited.
CREATE OR REPLACE FUNCTION app.analytics_admin_kpis(p_prev_start timestamptz, p_start timestamptz, p_end timestamptz, p_providers text[], p_models text[], p_statuses text[])
RETURNS TABLE (period text, runs bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric, errors bigint, fallbacks bigint, latency_p50 float8, latency_p95 float8, ttft_p50 float8, ttft_p95 float8)

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

    RETURN QUERY
    WITH k AS (
        SELECT (count(*) FILTER (WHERE r.created_at >= p_start))::bigint AS c_runs,
            coalesce(sum(r.input_tokens) FILTER (WHERE r.created_at >= p_start), 0)::bigint AS c_input_tokens,
            coalesce(sum(r.output_tokens) FILTER (WHERE r.created_at >= p_start), 0)::bigint AS c_output_tokens,
            coalesce(sum(r.cost_usd) FILTER (WHERE r.created_at >= p_start), 0)::numeric AS c_cost_usd,
            (count(*) FILTER (WHERE r.status = 'error' AND r.created_at >= p_start))::bigint AS c_errors,
            (count(r.fallback_from) FILTER (WHERE r.created_at >= p_start))::bigint AS c_fallbacks,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.created_at >= p_start) AS c_latency_p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.created_at >= p_start) AS c_latency_p95,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) FILTER (WHERE r.created_at >= p_start) AS c_ttft_p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) FILTER (WHERE r.created_at >= p_start) AS c_ttft_p95,
            (count(*) FILTER (WHERE r.created_at < p_start))::bigint AS p_runs,
            coalesce(sum(r.input_tokens) FILTER (WHERE r.created_at < p_start), 0)::bigint AS p_input_tokens,
            coalesce(sum(r.output_tokens) FILTER (WHERE r.created_at < p_start), 0)::bigint AS p_output_tokens,
            coalesce(sum(r.cost_usd) FILTER (WHERE r.created_at < p_start), 0)::numeric AS p_cost_usd,
            (count(*) FILTER (WHERE r.status = 'error' AND r.created_at < p_start))::bigint AS p_errors,
            (count(r.fallback_from) FILTER (WHERE r.created_at < p_start))::bigint AS p_fallbacks,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.created_at < p_start) AS p_latency_p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.created_at < p_start) AS p_latency_p95,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) FILTER (WHERE r.created_at < p_start) AS p_ttft_p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) FILTER (WHERE r.created_at < p_start) AS p_ttft_p95
        FROM public.agent_runs r
        WHERE
        r.created_at >= p_prev_start AND r.created_at < p_end
        AND (p_providers IS NULL OR r.provider = ANY (p_providers))
        AND (p_models IS NULL OR r.model = ANY (p_models))
        AND (p_statuses IS NULL OR r.status = ANY (p_statuses))

    )
    SELECT 'current'::text, k.c_runs, k.c_input_tokens, k.c_output_tokens, k.c_cost_usd, k.c_errors, k.c_fallbacks, k.c_latency_p50, k.c_latency_p95, k.c_ttft_p50, k.c_ttft_p95 FROM k
    UNION ALL
    SELECT 'previous'::text, k.p_runs, k.p_input_tokens, k.p_output_tokens, k.p_cost_usd, k.p_errors, k.p_fallbacks, k.p_latency_p50, k.p_latency_p95, k.p_ttft_p50, k.p_ttft_p95 FROM k;

END
$fn$
