"""networkx: shortest paths."""
import networkx as nx


def shortest_path():
    g = nx.Graph()
    g.add_weighted_edges_from([("a", "b", 4), ("a", "c", 1), ("c", "b", 2), ("b", "d", 5),
                               ("c", "d", 8), ("d", "e", 3)])
    return {"path": nx.shortest_path(g, "a", "e", weight="weight"),
            "length": nx.shortest_path_length(g, "a", "e", weight="weight")}


def grid_components():
    g = nx.grid_2d_graph(5, 5)
    g.remove_nodes_from([(2, y) for y in range(5)])
    return sorted(len(c) for c in nx.connected_components(g))
