using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;

namespace Conclave.Server.Api;

/// <summary>
/// Which methods the API serves on a path, for the fallback route: a path that exists with another method is
/// answered 405 with an Allow header (the fallback would otherwise answer every unmatched method 404).
/// </summary>
public sealed class RouteMethods(IEndpointRouteBuilder routes)
{
    private (TemplateMatcher Matcher, IReadOnlyList<string> Methods)[]? _table;

    public IReadOnlyList<string> AllowedFor(PathString path)
    {
        _table ??= [.. routes.DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpMethodMetadata>() is { HttpMethods.Count: > 0 } && e.RoutePattern.RawText is { } raw && !raw.Contains('*', StringComparison.Ordinal))
            .Select(e => (new TemplateMatcher(TemplateParser.Parse(e.RoutePattern.RawText!.TrimStart('/')), new RouteValueDictionary()),
                e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods))];
        var allowed = new SortedSet<string>(StringComparer.Ordinal);
        foreach ((TemplateMatcher matcher, IReadOnlyList<string> methods) in _table)
        {
            if (matcher.TryMatch(path, new RouteValueDictionary()))
            {
                allowed.UnionWith(methods);
            }
        }

        return [.. allowed];
    }
}
