-- app.analytics_admin_dashboard as migration 0004 created it. Migrations are history: this text is never edited.
CREATE OR REPLACE FUNCTION app.analytics_admin_dashboard(p_prev_start timestamptz, p_granularity text, p_start timestamptz, p_end timestamptz, p_providers text[], p_models text[], p_statuses text[])
RETURNS TABLE (figure text, period text, bucket timestamp, user_id uuid, email text,
               provider text, model text,
               runs bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric,
               errors bigint, fallbacks bigint,
               latency_p50 float8, latency_p95 float8, ttft_p50 float8, ttft_p95 float8)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET work_mem = '64MB'
SET jit = off
SET parallel_setup_cost = 100
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
    -- EXECUTE ... USING: a one-shot plan for these values (filters that are NULL fold away,
    -- the bucket CASE folds to one expression). The statement is a constant: no value is spliced.
    RETURN QUERY EXECUTE $q$
    SELECT f.figure, f.period, f.bucket AT TIME ZONE 'UTC', f.uid, u.email::text,
           f.provider, f.model, f.runs, f.input_tokens, f.output_tokens, f.cost_usd, f.errors,
           f.fallbacks, f.latency_p50, f.latency_p95, f.ttft_p50, f.ttft_p95
    FROM (
        SELECT 'kpis'::text AS figure, 'current'::text AS period, NULL::timestamptz AS bucket,
               NULL::uuid AS uid, NULL::text AS provider, NULL::text AS model, count(*)::bigint AS runs,
               coalesce(sum(r.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(r.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost_usd,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS errors,
               count(r.fallback_from)::bigint AS fallbacks,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p95,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p95
        FROM public.agent_runs r
        WHERE r.created_at >= $2 AND r.created_at < $3
          AND ($4::text[] IS NULL OR r.provider = ANY ($4))
          AND ($5::text[] IS NULL OR r.model = ANY ($5))
          AND ($6::text[] IS NULL OR r.status = ANY ($6))
        UNION ALL
        SELECT 'kpis', 'previous', NULL, NULL, NULL, NULL, count(*)::bigint AS runs,
               coalesce(sum(r.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(r.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost_usd,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS errors,
               count(r.fallback_from)::bigint AS fallbacks,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p95,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p95
        FROM public.agent_runs r
        WHERE r.created_at >= $1 AND r.created_at < $2
          AND ($4::text[] IS NULL OR r.provider = ANY ($4))
          AND ($5::text[] IS NULL OR r.model = ANY ($5))
          AND ($6::text[] IS NULL OR r.status = ANY ($6))
        UNION ALL
        SELECT 'series', NULL, CASE WHEN $7 THEN date_trunc('month', r.created_at, 'UTC') ELSE date_bin($8, r.created_at, timestamptz '2000-01-03 00:00:00+00') END, NULL, r.provider::text, NULL,
               count(*)::bigint AS runs,
               coalesce(sum(r.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(r.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost_usd,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS errors,
               count(r.fallback_from)::bigint AS fallbacks,
               NULL::float8, NULL::float8, NULL::float8, NULL::float8
        FROM public.agent_runs r
        WHERE r.created_at >= $2 AND r.created_at < $3
          AND ($4::text[] IS NULL OR r.provider = ANY ($4))
          AND ($5::text[] IS NULL OR r.model = ANY ($5))
          AND ($6::text[] IS NULL OR r.status = ANY ($6))
        GROUP BY 3, 5
        UNION ALL
        SELECT 'quality', NULL, CASE WHEN $7 THEN date_trunc('month', r.created_at, 'UTC') ELSE date_bin($8, r.created_at, timestamptz '2000-01-03 00:00:00+00') END, NULL, NULL, NULL,
               count(*)::bigint AS runs,
               coalesce(sum(r.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(r.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost_usd,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS errors,
               count(r.fallback_from)::bigint AS fallbacks,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS latency_p95,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p95
        FROM public.agent_runs r
        WHERE r.created_at >= $2 AND r.created_at < $3
          AND ($4::text[] IS NULL OR r.provider = ANY ($4))
          AND ($5::text[] IS NULL OR r.model = ANY ($5))
          AND ($6::text[] IS NULL OR r.status = ANY ($6))
        GROUP BY 3
        UNION ALL
        SELECT 'usage', NULL, NULL, r.user_id, r.provider::text, r.model::text, count(*)::bigint AS runs,
               coalesce(sum(r.input_tokens), 0)::bigint AS input_tokens,
               coalesce(sum(r.output_tokens), 0)::bigint AS output_tokens,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost_usd,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS errors,
               count(r.fallback_from)::bigint AS fallbacks,
               NULL::float8, NULL::float8, NULL::float8, NULL::float8
        FROM public.agent_runs r
        WHERE r.created_at >= $2 AND r.created_at < $3
          AND ($4::text[] IS NULL OR r.provider = ANY ($4))
          AND ($5::text[] IS NULL OR r.model = ANY ($5))
          AND ($6::text[] IS NULL OR r.status = ANY ($6))
        GROUP BY 4, 5, 6
    ) f
    LEFT JOIN public.users u ON u.id = f.uid
    ORDER BY f.figure, f.period, f.bucket,
             CASE WHEN f.figure = 'usage' THEN f.cost_usd END DESC,
             CASE WHEN f.figure = 'usage' THEN f.runs END DESC,
             u.email, f.provider, f.model
    $q$
    USING p_prev_start, p_start, p_end, p_providers, p_models, p_statuses,
          p_granularity = 'month',
          CASE p_granularity WHEN 'week' THEN interval '7 days' ELSE interval '1 day' END;
END
$fn$
