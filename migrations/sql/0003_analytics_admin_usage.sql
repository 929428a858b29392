-- app.analytics_admin_usage as migration 0003 created it. Migrations are history: this text is never edited.
CREATE OR REPLACE FUNCTION app.analytics_admin_usage(p_start timestamptz, p_end timestamptz, p_providers text[], p_models text[], p_statuses text[])
RETURNS TABLE (user_id uuid, email text, user_total boolean, provider text, model text,
               runs bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric, errors bigint, fallbacks bigint)

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
    WITH agg AS (
        SELECT r.user_id AS uid, grouping(r.provider, r.model) = 3 AS user_total,
               r.provider::text AS provider, r.model::text AS model,
               count(*)::bigint AS c,
               coalesce(sum(r.input_tokens), 0)::bigint AS i,
               coalesce(sum(r.output_tokens), 0)::bigint AS o,
               coalesce(sum(r.cost_usd), 0)::numeric AS cost,
               (count(*) FILTER (WHERE r.status = 'error'))::bigint AS e,
               count(r.fallback_from)::bigint AS f
        FROM public.agent_runs r
        WHERE
        r.created_at >= p_start AND r.created_at < p_end
        AND (p_providers IS NULL OR r.provider = ANY (p_providers))
        AND (p_models IS NULL OR r.model = ANY (p_models))
        AND (p_statuses IS NULL OR r.status = ANY (p_statuses))

        GROUP BY GROUPING SETS ((r.user_id), (r.user_id, r.provider, r.model))
    )
    SELECT a.uid, u.email::text, a.user_total, a.provider, a.model, a.c, a.i, a.o, a.cost, a.e, a.f
    FROM agg a JOIN public.users u ON u.id = a.uid
    ORDER BY a.cost DESC, a.c DESC, u.email, a.user_total DESC, a.provider, a.model;

END
$fn$
