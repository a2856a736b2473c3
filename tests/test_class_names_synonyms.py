"""Class names with synonyms: one object (names per class, flat queries, the
class of each query) from files and lists, used by the text encoding, the
text-embedding cache and MaskClipHead."""
import pytest
import torch
from maskclip_helpers import build_maskclip, reference_text_embeddings

from denseclip.models.heads.maskclip_refinements import max_over_synonyms
from denseclip.clip.class_names import ClassNames, read_class_name_sets
from denseclip.clip.prompt_class_names import (read_class_name_file,
                                               resolve_class_name_sets,
                                               resolve_class_names)
from denseclip.clip.prompt_templates import get_templates
from denseclip.clip.text_cache import TextEmbeddingCache
from denseclip.clip.weights_guard import RandomWeightsError

SYNONYMS = [['sky', 'cloud'], 'red car', ['tree', 'bush', 'hedge']]


def test_the_object_gives_names_queries_and_their_classes():
    names = ClassNames(SYNONYMS)
    assert names.names == ['sky', 'red car', 'tree']
    assert names.queries == ['sky', 'cloud', 'red car', 'tree', 'bush',
                             'hedge']
    assert names.query_class == [0, 0, 1, 2, 2, 2]
    assert (names.num_classes, names.num_queries) == (3, 6)
    assert names.has_synonyms and not ClassNames(['a', 'b']).has_synonyms
    assert names.label(2) == 'tree (+2)'
    assert names == resolve_class_name_sets(SYNONYMS)
    with pytest.raises(ValueError, match=r'class 0 of the class list has 2 '
                       r'synonyms \(sky, cloud\) but this model takes one'):
        names.single_names()


def test_voc21_file_reads_as_the_protocol_says():
    names = read_class_name_sets('configs/ovss/class_names/voc21.txt')
    assert names.num_classes == 21
    assert len(names.synonyms[0]) == 26 and 'background' not in \
        names.synonyms[0]
    assert names.synonyms[15][0] == 'person' and len(names.synonyms[15]) == 7
    assert names.num_queries == 26 + 7 + 5 + 18
    assert names.query_class[:27] == [0] * 26 + [1]
    assert resolve_class_name_sets(
        'configs/ovss/class_names/voc21_plain.txt').names[0] == 'background'


@pytest.mark.parametrize('content, message', [
    (b'sky, cloud\ncar\ncloud\n',
     r"'cloud' is on line 1 and again on line 3"),
    (b'sky,, cloud\ncar\n', r'line 1: an empty synonym'),
    (b'sky,\ncar\n', r'line 1: an empty synonym'),
    (b'sky\ncar, \xe9\n', r'line 2: byte 0xe9 at column 6 is not UTF-8'),
])
def test_a_bad_synonym_file_is_named(tmp_path, content, message):
    path = tmp_path / 'names.txt'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_class_name_sets(str(path))


def test_one_name_readers_refuse_synonyms_naming_the_line(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('sky\nred car, automobile\n')
    for read in (read_class_name_file, resolve_class_names):
        with pytest.raises(ValueError, match=r'class 1 of class name file '
                           r'.*names.txt has 2 synonyms'):
            read(str(path))
    path.write_text('sky\nred car\n')
    assert resolve_class_names(str(path)) == ['sky', 'red car']


def test_max_over_synonyms():
    scores = torch.tensor([1., 5., 2., 3., 9., 0.]).view(1, 6, 1, 1)
    classes = torch.tensor(ClassNames(SYNONYMS).query_class)
    out = max_over_synonyms(scores, classes, 3)
    assert out.flatten().tolist() == [5., 2., 9.]
    with pytest.raises(ValueError, match='5 query scores but 6 queries'):
        max_over_synonyms(scores[:, :5], classes, 3)


def test_the_cache_key_changes_with_synonyms(vit_clip):
    cfg = dict(embed_dim=32)
    templates = ['a photo of a {}.']
    key = TextEmbeddingCache.inputs
    grouped = key(vit_clip.jit, ClassNames(SYNONYMS), templates, cfg)
    flat = key(vit_clip.jit, ClassNames(SYNONYMS).queries, templates, cfg)
    regrouped = key(vit_clip.jit, ClassNames(
        [['sky'], ['cloud', 'red car'], ['tree', 'bush', 'hedge']]),
        templates, cfg)
    cache = TextEmbeddingCache('/nonexistent')
    paths = {cache.path(k) for k in (grouped, flat, regrouped)}
    assert len(paths) == 3
    # one name per class keys as the plain list did
    assert key(vit_clip.jit, ClassNames(['a', 'b']), templates, cfg) == \
        key(vit_clip.jit, ['a', 'b'], templates, cfg)


def test_head_encodes_every_synonym_and_reduces_per_class(vit_clip,
                                                          tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('sky, cloud\nred car\ntree, bush, hedge\n')
    model = build_maskclip(vit_clip, str(path), cache_dir=str(tmp_path))
    head = model.decode_head
    head.load_weights()
    expected = reference_text_embeddings(
        vit_clip.model, ClassNames(SYNONYMS).queries, get_templates('single'))
    torch.testing.assert_close(head.text_embeddings, expected, rtol=1e-5,
                               atol=1e-6)
    assert head.class_names == ['sky', 'red car', 'tree']
    assert head.query_class.tolist() == [0, 0, 1, 2, 2, 2]
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        queries = head(model.extract_feat(image))
        assert queries.shape[1] == 6
        classes = head.predict_by_feat(queries, [dict(img_shape=(4, 4))])
    assert classes.shape == (1, 3, 4, 4)
    # the same cache entry on the second build
    again = build_maskclip(vit_clip, str(path), cache_dir=str(tmp_path))
    again.decode_head.load_weights()
    assert torch.equal(again.decode_head.text_embeddings,
                       head.text_embeddings)


def test_head_names_the_count_that_does_not_fit(vit_clip, tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('sky, cloud\nred car\n')
    with pytest.raises(ValueError, match=r'MaskClipHead: 2 class names but '
                       r'num_classes=3 \(decode_head.num_classes\)'):
        build_maskclip(vit_clip, ['a', 'b', 'c'],
                       cache_dir=str(tmp_path)).decode_head.set_class_names(
                           str(path))
    model = build_maskclip(vit_clip, SYNONYMS, cache_dir=str(tmp_path))
    with pytest.raises(RandomWeightsError, match=r'holds 3 class embeddings '
                       r'but the head has 6 names of ClassNames'):
        model.decode_head.set_text_embeddings(torch.randn(3, 32), 'x.pth')
