"""The image store: hostile tarballs and directories, references, IDs, removal.

Runs as root (chroot, device nodes, owners), as CI does.
"""

from __future__ import annotations

import io
import os
import pathlib
import stat
import subprocess
import sys
import tarfile
import threading
import time
from typing import Any

import pytest

from engine import image as image_module
from engine import unpack
from engine.composition import open_engine
from engine.container_config import ContainerConfig
from engine.errors import Conflict, InvalidParameter, NotFound, System
from engine.image import ImageStore, _directory_digest, normalize_reference
from engine.service import Engine
from engine.store import Database
from engine.testing import FakeHost, FakeRuntime

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, mknod, chown)")


@pytest.fixture
def store(tmp_path: pathlib.Path) -> ImageStore:
    return ImageStore(tmp_path / "root", Database(str(tmp_path / "berth.db")))


@pytest.fixture
def engine(tmp_path: pathlib.Path) -> Engine:
    root = tmp_path / "root"
    opened, _ = open_engine(root, runtime=FakeRuntime(root / "fake" / "runtime"),
                            host=FakeHost(str(root), root / "fake" / "host"), backend="fake")
    opened.images = ImageStore(root, opened.saga.db)
    return opened


def tarball(path: pathlib.Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> str:
    with tarfile.open(path, "w") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def victim(tmp_path: pathlib.Path) -> pathlib.Path:
    target = tmp_path / "host" / "secret"
    target.parent.mkdir()
    target.write_text("host data")
    target.chmod(0o600)
    return target


def untouched(path: pathlib.Path) -> bool:
    info = path.stat()
    return (path.read_text() == "host data" and stat.S_IMODE(info.st_mode) == 0o600
            and info.st_uid == 0 and info.st_nlink == 1)


def test_a_hardlink_to_a_host_file_cannot_overwrite_it(store: ImageStore,
                                                       tmp_path: pathlib.Path) -> None:
    secret = victim(tmp_path)
    for linkname in (str(secret), "../../../../../../../../" + str(secret).lstrip("/")):
        source = tarball(tmp_path / "hardlink.tar",
                         (member("hl", tarfile.LNKTYPE, linkname=linkname, mode=0o755,
                                 uid=4242, gid=4242), None),
                         (member("hl", mode=0o755, uid=4242, gid=4242), b"OVERWRITTEN"))
        with pytest.raises(InvalidParameter, match="cannot import"):
            store.import_image(source, "evil")
        assert untouched(secret)
    assert not [entry for entry in os.listdir(store.root) if entry.startswith(".")]


def test_a_lone_hardlink_never_brings_a_host_inode_into_the_image(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    secret = victim(tmp_path)
    source = tarball(tmp_path / "lone.tar", (member("etc", tarfile.DIRTYPE, mode=0o755), None),
                     (member("etc/shadow", tarfile.LNKTYPE, linkname=str(secret)), None))
    with pytest.raises(InvalidParameter) as refused:
        store.import_image(source, "evil")
    # In words, never Python's KeyError (helper-45).
    assert refused.value.message.endswith(
        f"cannot extract etc/shadow: invalid hardlink to {secret}: no such file in the archive")
    assert untouched(secret)


def test_symlinks_and_dotdot_paths_stay_inside_the_new_rootfs(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    source = tarball(
        tmp_path / "links.tar",
        (member("escape", tarfile.SYMTYPE, linkname=str(outside)), None),
        (member("up", tarfile.SYMTYPE, linkname="../../../../../.." + str(outside)), None),
        (member("../../../../dotdot"), b"x"),
        (member("/abs"), b"y"))
    try:
        record = store.import_image(source, "links")
    except InvalidParameter:  # writing through a dangling link fails: just as safe
        record = None
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "dotdot").exists() and not pathlib.Path("/abs").exists()
    if record is not None:
        rootfs = pathlib.Path(store.rootfs(record.digest))
        assert (rootfs / "dotdot").read_bytes() == b"x"
        assert (rootfs / "abs").read_bytes() == b"y"


def test_a_file_replacing_a_hardlink_does_not_write_through_it(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "relink.tar", (member("a"), b"original"),
                     (member("b", tarfile.LNKTYPE, linkname="a"), None),
                     (member("b"), b"replaced"))
    rootfs = pathlib.Path(store.rootfs(store.import_image(source, "relink").digest))
    assert (rootfs / "a").read_bytes() == b"original"
    assert (rootfs / "b").read_bytes() == b"replaced"


def test_a_tarball_keeps_setuid_owners_and_device_nodes(store: ImageStore,
                                                        tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "modes.tar",
                     (member("bin", tarfile.DIRTYPE, mode=0o755), None),
                     (member("bin/su", mode=0o4755, uid=0, gid=0), b"#!/bin/sh\n"),
                     (member("home", tarfile.DIRTYPE, mode=0o755, uid=1000, gid=1000), None),
                     (member("dev", tarfile.DIRTYPE, mode=0o755), None),
                     (member("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
                      None),
                     (member("ro", tarfile.DIRTYPE, mode=0o555), None),
                     (member("ro/file"), b"inside a read-only directory"))
    rootfs = pathlib.Path(store.rootfs(store.import_image(source, "modes").digest))
    assert stat.S_IMODE((rootfs / "bin/su").stat().st_mode) == 0o4755
    assert (rootfs / "home").stat().st_uid == 1000
    null = (rootfs / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE((rootfs / "ro").stat().st_mode) == 0o555
    assert (rootfs / "ro/file").read_bytes() == b"inside a read-only directory"


def test_a_directory_is_copied_as_it_is_without_reading_devices(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "tree"
    (source / "dev").mkdir(parents=True)
    os.mknod(source / "dev/zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    os.mkfifo(source / "fifo")
    (source / "su").write_text("#!/bin/sh\n")
    os.chown(source / "su", 0, 0)
    (source / "su").chmod(0o4755)
    (source / "owned").write_text("mine")
    os.chown(source / "owned", 1000, 1001)
    os.link(source / "owned", source / "twin")
    (source / "link").symlink_to(tmp_path / "outside-file")
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(source), "tree").digest))
    zero = (rootfs / "dev/zero").lstat()
    assert stat.S_ISCHR(zero.st_mode) and zero.st_rdev == os.makedev(1, 5)
    assert stat.S_ISFIFO((rootfs / "fifo").lstat().st_mode)
    assert stat.S_IMODE((rootfs / "su").stat().st_mode) == 0o4755
    owned = (rootfs / "owned").stat()
    assert (owned.st_uid, owned.st_gid) == (1000, 1001)
    assert owned.st_ino == (rootfs / "twin").stat().st_ino
    assert os.readlink(rootfs / "link") == str(tmp_path / "outside-file")


def test_a_source_that_is_neither_file_nor_directory_is_refused(store: ImageStore) -> None:
    with pytest.raises(InvalidParameter, match="neither a regular file"):
        store.import_image("/dev/zero", "zero")
    with pytest.raises(InvalidParameter, match="does not exist"):
        store.import_image("/nonexistent.tar", "missing")


def test_a_file_that_is_not_a_tarball_is_invalid(store: ImageStore,
                                                 tmp_path: pathlib.Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidParameter, match="cannot import"):
        store.import_image(str(tmp_path / "junk.tar"), "junk")
    assert not [entry for entry in os.listdir(store.root) if entry.startswith(".")]


def test_directory_digests_cannot_be_forged_with_newlines(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "a").symlink_to("X\nb")
    (first / "c").write_text("")
    (second / "a").symlink_to("X")
    (second / "b\nc").write_text("")
    assert _directory_digest(first)[0] != _directory_digest(second)[0]


def test_staging_left_by_a_dead_import_is_swept_at_open(tmp_path: pathlib.Path) -> None:
    images = tmp_path / "root" / "images"
    (images / ".import-dead" / "rootfs").mkdir(parents=True)
    (images / ".remove-dead" / "abc").mkdir(parents=True)
    ImageStore(tmp_path / "root", Database(str(tmp_path / "berth.db")))
    assert sorted(os.listdir(images)) == []


def test_content_already_in_place_is_a_successful_import(store: ImageStore,
                                                          tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "same.tar", (member("file"), b"same"))
    record = store.import_image(source, "one")
    target = store.root / record.digest.removeprefix("sha256:")
    descriptor = os.open(source, os.O_RDONLY)
    try:  # the loser of a race: its staging is dropped, the image in place stays
        again = store._unpack(descriptor, directory=False, reference="one:latest")
        assert (again.digest, again.size_bytes) == (record.digest, record.size_bytes)
    finally:
        os.close(descriptor)
    assert (target / "rootfs" / "file").read_bytes() == b"same"
    assert store.import_image(source, "two").digest == record.digest
    assert sorted(os.listdir(store.root)) == [record.digest.removeprefix("sha256:")]


def test_concurrent_imports_of_the_same_content_both_succeed(store: ImageStore,
                                                             tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "race.tar", (member("file"), b"raced"))
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            store.import_image(source, name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"race{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {image.digest for image in store.list_images()} == {
        store.resolve("race0").digest}


@pytest.mark.parametrize(("reference", "message"), [
    (":tag", "invalid reference format"), ("foo:", "invalid reference format"),
    ("UPPER", "must be lowercase"), ("a//b", "invalid reference format"),
    ("../x", "invalid reference format"), ("foo:bar:baz", "invalid reference format"),
    ("foo:ta/g", "invalid reference format"), ("foo@sha256:abc", "invalid reference format"),
    ("a" * 256, "must not be more than 255"), ("f" * 64, "64-byte hexadecimal"),
    ("", "invalid reference format"), (" busybox", "invalid reference format")])
def test_invalid_references_are_refused(reference: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        normalize_reference(reference)


@pytest.mark.parametrize(("reference", "normalized"), [
    ("busybox", "busybox:latest"), ("busybox:1.36", "busybox:1.36"),
    ("library/busy_box-x.y", "busy_box-x.y:latest"),
    ("docker.io/library/nrm", "nrm:latest"), ("index.docker.io/library/nrm:2", "nrm:2"),
    ("docker.io/team/app", "team/app:latest"), ("library/a/b", "library/a/b:latest"),
    ("localhost:5000/library/x", "localhost:5000/library/x:latest"),
    ("localhost:5000/team/app:V1", "localhost:5000/team/app:V1"),
    ("Registry.example.com/app", "Registry.example.com/app:latest")])
def test_valid_references_are_normalized(reference: str, normalized: str) -> None:
    assert normalize_reference(reference) == normalized


def test_images_are_found_and_removed_by_id(store: ImageStore, tmp_path: pathlib.Path) -> None:
    record = store.import_image(tarball(tmp_path / "id.tar", (member("f"), b"id")), "byid")
    hexdigest = record.digest.removeprefix("sha256:")
    for reference in (hexdigest, hexdigest[:12], record.digest):
        assert store.resolve(reference).digest == record.digest
    store.import_image(str(tmp_path / "id.tar"), "other")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(hexdigest[:12])
    assert store.remove("other") == (["other:latest"], "")
    assert store.remove(hexdigest[:12]) == (["byid:latest"], record.digest)
    assert os.listdir(store.root) == []
    with pytest.raises(NotFound, match="No such image: byid"):
        store.resolve("byid")


def test_an_ambiguous_id_prefix_is_refused(store: ImageStore, tmp_path: pathlib.Path) -> None:
    digests = set()
    for index in range(40):  # 40 images: two of them share a first hex digit
        source = tarball(tmp_path / f"{index}.tar", (member("f"), str(index).encode()))
        digests.add(store.import_image(source, f"image{index}").digest[7])
        if len(digests) <= index:
            break
    shared = next(digit for digit in digests
                  if sum(image.digest[7] == digit for image in store.list_images()) > 1)
    with pytest.raises(InvalidParameter, match="multiple IDs found"):
        store.resolve(shared)


def test_a_used_image_can_be_untagged_but_not_lose_its_last_name(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    images = engine.images
    assert images is not None
    source = tarball(tmp_path / "used.tar", (member("f"), b"used"))
    images.import_image(source, "first")
    images.import_image(source, "second")
    engine.create(ContainerConfig(image="first", command=("true",)))
    assert images.remove("first") == (["first:latest"], "")  # another name left: untag only
    with pytest.raises(Conflict, match='unable to remove repository reference "second" '):
        images.remove("second")
    with pytest.raises(Conflict, match="being used by stopped container"):
        images.remove(images.resolve("second").digest)
    assert images.resolve("second")
    images.import_image(source, "third")
    engine.start(engine.create(ContainerConfig(image="third", command=("sleep", "60"))).id)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running "):
        images.remove(images.resolve("third").digest)  # checked before the several names


def test_a_name_moved_to_new_content_leaves_the_old_image_dangling(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    old = store.import_image(tarball(tmp_path / "v1.tar", (member("f"), b"v1")), "app")
    new = store.import_image(tarball(tmp_path / "v2.tar", (member("f"), b"v2")), "app")
    listed = {image.reference: image.digest for image in store.list_images()}
    assert listed == {"app:latest": new.digest, old.digest: old.digest}  # <none>, by its ID
    assert pathlib.Path(store.rootfs(old.digest)).is_dir()
    assert store.remove(old.digest.removeprefix("sha256:")[:12]) == ([], old.digest)
    assert not pathlib.Path(store.rootfs(old.digest)).exists()
    assert [image.reference for image in store.list_images()] == ["app:latest"]
    store.import_image(tarball(tmp_path / "v3.tar", (member("f"), b"v3")), "app")
    store.import_image(str(tmp_path / "v2.tar"), "app")  # tagged again: not dangling any more
    references = sorted(image.reference for image in store.list_images())
    assert new.digest not in references and "app:latest" in references


def test_an_import_without_a_name_is_untagged_as_docker_import(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    """``docker import FILE``: a ``<none>`` image, not one named "imported"; the same content
    already named keeps its name and gains no ``<none>`` twin."""
    untagged = store.import_image(tarball(tmp_path / "a.tar", (member("f"), b"a")), "")
    assert untagged.reference == untagged.digest  # dangling: named by its ID
    assert [image.reference for image in store.list_images()] == [untagged.digest]
    named = store.import_image(str(tmp_path / "a.tar"), "app")
    assert named.digest == untagged.digest
    assert [image.reference for image in store.list_images()] == ["app:latest"]
    again = store.import_image(str(tmp_path / "a.tar"), "")
    assert again.reference == "app:latest"
    assert [image.reference for image in store.list_images()] == ["app:latest"]


def test_an_image_being_removed_is_never_used_by_a_new_container(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    images = engine.images
    assert images is not None
    images.import_image(tarball(tmp_path / "raced.tar", (member("f"), b"raced")), "raced")
    with images.in_use():  # a create between its lookup and its insert
        removal = threading.Thread(target=images.remove, args=("raced",))
        removal.start()
        removal.join(0.2)
        assert removal.is_alive()  # the removal waits for the create to be stored
    removal.join(10)
    assert not removal.is_alive()
    with pytest.raises(NotFound):
        engine.create(ContainerConfig(image="raced", command=("true",)))


def test_a_directory_given_through_a_symlink_is_copied_not_linked(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "file").write_text("content")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(tmp_path / "alias"), "a").digest))
    assert rootfs.is_dir() and not rootfs.is_symlink()
    assert (rootfs / "file").read_text() == "content"
    (tmp_path / "real" / "file").write_text("changed on the host")
    assert (rootfs / "file").read_text() == "content"


def test_a_deep_directory_tree_is_copied(store: ImageStore, tmp_path: pathlib.Path) -> None:
    levels = 1100  # beyond Python's recursion limit (os.walk and pathlib recurse in 3.11)
    (tmp_path / "deep").mkdir()
    parent = os.open(tmp_path / "deep", os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=parent)
        child = os.open("d", os.O_RDONLY, dir_fd=parent)
        os.close(parent)
        parent = child
    with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=parent), "w") as leaf:
        leaf.write("bottom")
    os.close(parent)
    record = store.import_image(str(tmp_path / "deep"), "deep")
    assert record.size_bytes == len("bottom")
    rootfs = pathlib.Path(store.rootfs(record.digest))
    assert (rootfs / "/".join(["d"] * levels) / "leaf").read_text() == "bottom"
    assert store.remove("deep") == (["deep:latest"], record.digest)
    assert os.listdir(store.root) == []
    subprocess.run(["rm", "-rf", str(tmp_path / "deep")], check=True)  # pytest's rmtree recurses


def test_a_fifo_or_device_given_as_the_source_is_refused_without_reading_it(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(InvalidParameter, match="neither a regular file"):
        store.import_image(str(tmp_path / "fifo"), "fifo")


def test_root_members_and_replaced_directories_are_handled_inside_the_image(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "odd.tar",
                     (member("/", tarfile.DIRTYPE, mode=0o755), None),
                     (member("./", tarfile.DIRTYPE, mode=0o755), None),
                     (member("f"), b"target"),
                     (member("d", tarfile.DIRTYPE, mode=0o4777, uid=5), None),
                     (member("d", tarfile.SYMTYPE, linkname="/f"), None))
    rootfs = pathlib.Path(store.rootfs(store.import_image(source, "odd").digest))
    assert os.readlink(rootfs / "d") == "/f"
    target = (rootfs / "f").stat()  # the directory's attributes never went through the link
    assert (stat.S_IMODE(target.st_mode), target.st_uid) == (0o644, 0)
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o755


def test_a_name_that_would_look_like_an_image_id_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="reserved for image IDs"):
        normalize_reference("sha256:" + "a" * 64)
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        normalize_reference("app:\u0663")  # Go's \w is ASCII


def test_a_tarball_deeper_than_a_host_path_is_refused_cleanly(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    """Names under 4096 bytes inside the image that are longer from the host: the import
    fails as InvalidParameter or succeeds, and leaves no image without a record."""
    segment = "b" * 200
    members = [(member("/".join([segment] * depth), tarfile.DIRTYPE, mode=0o755), None)
               for depth in range(1, 21)]
    members.append((member("/".join([segment] * 20) + "/file"), b"deep"))
    source = tarball(tmp_path / "long.tar", *members)
    try:
        record = store.import_image(source, "long")
    except InvalidParameter as error:
        assert "cannot import" in error.message
        assert os.listdir(store.root) == []
    else:
        assert record.size_bytes == 4
        assert os.listdir(store.root) == [record.digest.removeprefix("sha256:")]


def test_a_directory_with_many_subdirectories_keeps_few_descriptors_open(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "wide"
    for index in range(3000):
        (source / f"d{index}").mkdir(parents=True)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(512, hard), hard))
    try:
        record = store.import_image(str(source), "wide")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(os.listdir(store.rootfs(record.digest))) == 3000


def test_a_directory_holding_the_data_root_is_copied_without_it(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "host"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_text("box")
    store = ImageStore(source / "var" / "lib" / "berth", Database(str(tmp_path / "db")))
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(source), "host").digest))
    assert (rootfs / "etc" / "hostname").read_text() == "box"
    assert os.listdir(rootfs / "var" / "lib") == []  # not its own staging, nor its images


def test_pax_extended_attributes_are_kept(store: ImageStore, tmp_path: pathlib.Path) -> None:
    """File capabilities travel as SCHILY.xattr.security.capability (ping's cap_net_raw)."""
    capability = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep
    info = member("ping", mode=0o755)
    info.pax_headers = {"SCHILY.xattr.user.note": "kept",
                        "SCHILY.xattr.security.capability":
                            capability.decode("utf-8", "surrogateescape")}
    directory = member("d", tarfile.DIRTYPE, mode=0o755)
    directory.pax_headers = {"SCHILY.xattr.user.dir": "too"}
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        info.size = 4
        archive.addfile(info, io.BytesIO(b"ping"))
        archive.addfile(directory)
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(path), "pax").digest))
    assert os.getxattr(rootfs / "ping", "user.note") == b"kept"
    assert os.getxattr(rootfs / "ping", "security.capability") == capability
    assert os.getxattr(rootfs / "d", "user.dir") == b"too"


def test_the_data_root_or_its_store_as_a_source_never_copies_the_staging(
        tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    store = ImageStore(root, Database(str(tmp_path / "db")))
    store.import_image(tarball(tmp_path / "seed.tar", (member("f"), b"seed")), "seed")
    for source in (root, root / "images"):
        record = store.import_image(str(source), f"self{len(source.parts)}")
        rootfs = pathlib.Path(store.rootfs(record.digest))
        assert not any(name.startswith(".import-") for _, names, _ in os.walk(rootfs)
                       for name in names)
    assert not [entry for entry in os.listdir(store.root) if entry.startswith(".")]


def test_the_roots_own_attributes_are_part_of_the_digest(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for tree in (first, second):
        tree.mkdir()
        (tree / "f").write_text("same")
    second.chmod(0o700)
    assert _directory_digest(first)[0] != _directory_digest(second)[0]


def test_hardlinked_bytes_count_once_and_fifo_xattrs_are_copied(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "links"
    source.mkdir()
    (source / "a").write_text("abc")
    os.link(source / "a", source / "b")
    os.mkfifo(source / "fifo")
    os.setxattr(source / "fifo", "trusted.note", b"kept")
    record = store.import_image(str(source), "links")
    assert record.size_bytes == 3
    assert os.getxattr(pathlib.Path(store.rootfs(record.digest)) / "fifo",
                       "trusted.note") == b"kept"


def test_a_repeated_directory_member_takes_the_last_ones_attributes_and_refused_xattrs_pass(
        store: ImageStore, tmp_path: pathlib.Path) -> None:
    fifo = member("p", tarfile.FIFOTYPE, mode=0o644)
    fifo.pax_headers = {"SCHILY.xattr.user.x": "refused on a fifo"}
    path = tmp_path / "repeat.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(member("d", tarfile.DIRTYPE, mode=0o700))
        archive.addfile(member("d", tarfile.DIRTYPE, mode=0o755))
        archive.addfile(fifo)
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(path), "repeat").digest))
    assert stat.S_IMODE((rootfs / "d").stat().st_mode) == 0o755
    assert stat.S_ISFIFO((rootfs / "p").lstat().st_mode)


def test_an_image_directory_no_row_names_is_reclaimed_at_open(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    """A crash between an import's move into place and its row (or a removal's rows and its
    files) left it, or it is the layer of a deleted image whose last container went while the
    daemon was down: deleted, unless a container still uses it (then kept, with no name)."""
    images = engine.images
    assert images is not None
    used = images.import_image(tarball(tmp_path / "used.tar", (member("f"), b"used")), "used")
    orphan = images.import_image(tarball(tmp_path / "orphan.tar", (member("f"), b"x")), "orphan")
    user = engine.create(ContainerConfig(image="used", command=("true",)))
    with engine.saga.db.write() as writer:  # what the crash left: files, no row
        writer.delete_image("used:latest")
        writer.delete_image("orphan:latest")
    reopened = ImageStore(tmp_path / "root", engine.saga.db)
    assert not pathlib.Path(reopened.rootfs(orphan.digest)).exists()
    assert reopened.list_images() == []
    assert pathlib.Path(reopened.rootfs(used.digest)).is_dir()  # its container's layer
    assert not [entry for entry in os.listdir(reopened.root) if entry.startswith(".")]
    engine.images = reopened
    engine.remove(user.id)
    assert os.listdir(reopened.root) == []  # collected with its last container


def test_a_forced_rmi_deletes_an_image_stopped_containers_use_and_keeps_their_layer(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    """moby's ``rmi -f``: the image goes (no name, not listed), its files stay as the layer
    of the containers that use it, and go with the last of them."""
    images = engine.images
    assert images is not None
    record = images.import_image(tarball(tmp_path / "a.tar", (member("f"), b"a")), "app")
    first = engine.create(ContainerConfig(image="app", command=("true",)))
    second = engine.create(ContainerConfig(image="app", command=("true",)))
    with pytest.raises(Conflict, match="must force"):
        images.remove("app")
    assert images.remove("app", force=True) == (["app:latest"], record.digest)
    assert images.list_images() == []
    with pytest.raises(NotFound):
        images.resolve("app")
    rootfs = pathlib.Path(images.rootfs(record.digest))
    assert (rootfs / "f").read_bytes() == b"a"
    engine.start(first.id)  # its layer is there: it still starts, as Docker's does
    engine.remove(first.id, force=True)
    assert rootfs.is_dir()  # the other container still uses it
    engine.remove(second.id)
    assert not rootfs.exists() and os.listdir(images.root) == []


def test_a_forced_rmi_of_a_running_containers_image(engine: Engine,
                                                   tmp_path: pathlib.Path) -> None:
    """By name, its last name is untagged and the image stays as <none>; by ID, it is never
    deleted ("cannot be forced"); an image with several names goes whole by ID."""
    images = engine.images
    assert images is not None
    record = images.import_image(tarball(tmp_path / "r.tar", (member("f"), b"r")), "run")
    images.import_image(str(tmp_path / "r.tar"), "other")
    engine.start(engine.create(ContainerConfig(image="run", command=("sleep", "60"))).id)
    short = record.digest.removeprefix("sha256:")[:12]
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running"):
        images.remove(short, force=True)
    assert images.remove("other", force=True) == (["other:latest"], "")
    assert images.remove("run", force=True) == (["run:latest"], "")
    assert [(image.reference, image.digest, image.created_at)
            for image in images.list_images()] == [
        (record.digest, record.digest, record.created_at)]  # <none>, created when it was
    assert pathlib.Path(images.rootfs(record.digest)).is_dir()


def test_a_forced_rmi_by_id_removes_every_name(store: ImageStore,
                                               tmp_path: pathlib.Path) -> None:
    record = store.import_image(tarball(tmp_path / "m.tar", (member("f"), b"m")), "one")
    store.import_image(str(tmp_path / "m.tar"), "two:1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove(record.digest)
    removal = store.remove(record.digest, force=True)
    assert sorted(removal.untagged) == ["one:latest", "two:1"]
    assert removal.deleted == record.digest
    assert store.list_images() == [] and os.listdir(store.root) == []


@pytest.mark.parametrize("cut", [1536 + 100, 3072 + 100, 3072 + 512 + 100])
def test_a_tarball_cut_inside_a_header_is_refused(store: ImageStore, tmp_path: pathlib.Path,
                                                  cut: int) -> None:
    """Go's archive/tar (Docker's) fails with "unexpected EOF" on a header cut short;
    tarfile took it for the end and the image was imported without the rest (helper-45)."""
    whole = pathlib.Path(tarball(tmp_path / "whole.tar", (member("a"), b"a" * 600),
                                 (member("b"), b"b" * 600)))
    # a: header 512 + data 1024 (padded); b: 1536-3072; then the end-of-archive blocks.
    cut_short = tmp_path / "cut.tar"
    cut_short.write_bytes(whole.read_bytes()[:cut])
    with pytest.raises(InvalidParameter, match="unexpected EOF"):
        store.import_image(str(cut_short), "cut")
    assert store.list_images() == []
    # Ending right after a member, or after one zero block, is a whole archive to Go too.
    for end in (1536, 3072, 3072 + 512):
        cut_short.write_bytes(whole.read_bytes()[:end])
        store.import_image(str(cut_short), f"whole{end}")


def test_the_unpacker_is_this_checkouts_own(store: ImageStore, tmp_path: pathlib.Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``-I`` ignores PYTHONPATH: ``-m engine.unpack`` ran whatever ``engine`` the site had
    installed, not the daemon's (helper-46), and failed where none is installed."""
    ran: list[list[str]] = []
    real_run = subprocess.run

    def recorded(argv: list[str], **options: object) -> object:
        ran.append(list(argv))
        return real_run(argv, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", recorded)
    store.import_image(str(tarball(tmp_path / "one.tar", (member("a"), b"a"))), "one")
    [argv] = [argv for argv in ran if "-I" in argv]
    assert argv[:3] == [sys.executable, "-I", str(pathlib.Path(unpack.__file__))]
    assert pathlib.Path(argv[2]).parent == pathlib.Path(image_module.__file__).parent


def test_the_unpacker_stops_once_its_daemon_is_gone(tmp_path: pathlib.Path) -> None:
    source = tarball(tmp_path / "orphaned.tar", (member("a"), b"a"), (member("b"), b"b"))
    (tmp_path / "rootfs").mkdir()
    with open(source, "rb") as stdin:
        done = subprocess.run([sys.executable, "-I", unpack.__file__,
                               str(tmp_path / "rootfs"), "1"],  # pid 1 is not its parent
                              stdin=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "the daemon that asked for this import is gone" in done.stderr
    assert os.listdir(tmp_path / "rootfs") == []


def test_the_unpacker_dies_with_its_daemon(tmp_path: pathlib.Path) -> None:
    """A daemon killed mid-import: its unpacker is killed too, in the middle of a member, so
    that its staging directory is free for the next daemon to sweep (it used to finish the
    member it was writing, however large, before it noticed)."""
    size = 256 << 20
    big = tmp_path / "big.tar"
    header = tarfile.TarInfo("big")
    header.size = size
    with open(big, "wb") as archive:  # sparse: the member's zeros are a hole in the file
        archive.write(header.tobuf())
        archive.seek(512 + size)
        archive.write(b"\0" * 1024)
    (tmp_path / "rootfs").mkdir()
    script = (
        "import subprocess, sys, os, time\n"
        f"child = subprocess.Popen([sys.executable, '-I', {unpack.__file__!r}, "
        f"{str(tmp_path / 'rootfs')!r}, str(os.getpid())], stdin=open({str(big)!r}, 'rb'))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n")
    daemon = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              cwd=pathlib.Path(__file__).parents[2])
    assert daemon.stdout is not None
    unpacker = int(daemon.stdout.readline())
    written = tmp_path / "rootfs" / "big"
    deadline = time.monotonic() + 10
    while not written.exists() and time.monotonic() < deadline:
        time.sleep(0.001)  # until it writes the member
    daemon.kill()
    daemon.wait()
    deadline = time.monotonic() + 10
    while _alive(unpacker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(unpacker)
    assert written.stat().st_size < size  # killed while it wrote


def _alive(pid: int) -> bool:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has died


def test_a_full_disk_is_the_hosts_fault_and_leaves_nothing(tmp_path: pathlib.Path) -> None:
    """ENOSPC is System (a 500 in Docker), not the caller's InvalidParameter; neither the
    copy of the archive nor its unpacking leaves a staging directory or a row behind."""
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], check=True)
    try:
        images = ImageStore(small, Database(str(tmp_path / "berth.db")))
        for data_size in (8 << 20, 3 << 20):  # the copy fails; then the unpacking does
            source = tarball(tmp_path / f"{data_size}.tar",
                             (member("data"), os.urandom(data_size)))
            with pytest.raises(System) as raised:
                images.import_image(source, "full")
            assert "No space left on device" in raised.value.message
            assert images.list_images() == []
            assert os.listdir(images.root) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


@pytest.mark.parametrize(("content", "message"), [
    (b"this is not a tarball" * 100, "not a tar archive (plain, gzip, bzip2 or xz): invalid "
                                     "header"),
    (b"", "not a tar archive (plain, gzip, bzip2 or xz): empty file")], ids=["text", "empty"])
def test_what_is_no_tarball_says_so(store: ImageStore, tmp_path: pathlib.Path,
                                    content: bytes, message: str) -> None:
    source = tmp_path / "source"
    source.write_bytes(content)
    with pytest.raises(InvalidParameter) as raised:
        store.import_image(str(source), "nottar")
    assert raised.value.message == f"cannot import {source}: {message}"


def test_a_member_that_cannot_be_made_is_named(store: ImageStore, tmp_path: pathlib.Path
                                               ) -> None:
    """An owner out of range used to end the unpacker with a traceback's last line."""
    source = tarball(tmp_path / "uid.tar", (member("etc/odd", uid=1 << 40), b"x"))
    with pytest.raises(InvalidParameter) as raised:
        store.import_image(source, "odd")
    assert raised.value.message.startswith(f"cannot import {source}: cannot extract etc/odd: ")


def test_an_image_was_created_when_its_content_first_came(store: ImageStore,
                                                          tmp_path: pathlib.Path) -> None:
    """Another name for the same content is not a newer image (``docker images`` CREATED)."""
    source = tarball(tmp_path / "same.tar", (member("f"), b"same"))
    first = store.import_image(source, "first")
    time.sleep(0.01)
    second = store.import_image(source, "second")
    assert second.digest == first.digest
    assert second.created_at == first.created_at
    assert {image.created_at for image in store.list_images()} == {first.created_at}


@pytest.mark.parametrize("source", ["", "engine", "relative/dir", "/tmp\0/x"])
def test_an_import_source_is_an_absolute_path(store: ImageStore, source: str) -> None:
    """Never the daemon's own working directory (``import ''`` imported the client's)."""
    with pytest.raises(InvalidParameter, match="give an absolute path on the daemon's host"):
        store.import_image(source, "relative")


def test_whiteouts_remove_what_they_name_and_are_not_kept(store: ImageStore,
                                                          tmp_path: pathlib.Path) -> None:
    """As Docker's layer unpacking applies them to an image's only layer: ``.wh.NAME`` removes
    NAME and is not kept, nor is ``.wh..wh..opq`` or AUFS's metadata (they were unpacked as
    ordinary files)."""
    source = tarball(
        tmp_path / "whiteouts.tar",
        (member("keep"), b"k"), (member(".wh.keep"), b""),
        (member("d", tarfile.DIRTYPE, mode=0o755), None), (member("d/x"), b"x"),
        (member("d/sub", tarfile.DIRTYPE, mode=0o755), None), (member("d/sub/y"), b"y"),
        (member("d/.wh.sub"), b""), (member("d/.wh..wh..opq"), b""),
        (member(".wh.later"), b""), (member("later"), b"back"),
        (member(".wh..wh.plnk", tarfile.DIRTYPE, mode=0o700), None),
        (member(".wh..wh.plnk/1234"), b"aufs"), (member("stays"), b"s"))
    rootfs = pathlib.Path(store.rootfs(store.import_image(source, "whited").digest))
    assert sorted(str(path.relative_to(rootfs)) for path in rootfs.rglob("*")) == [
        "d", "d/x", "later", "stays"]
    assert (rootfs / "later").read_text() == "back"  # a whiteout before its name hides nothing


def test_a_whiteout_of_dot_or_dot_dot_removes_nothing(store: ImageStore,
                                                      tmp_path: pathlib.Path) -> None:
    """``d/e/.wh..`` removed ``d/e`` and ``d/e/.wh...`` removed ``d`` (helper-41)."""
    source = tarball(
        tmp_path / "dots.tar",
        (member("d", tarfile.DIRTYPE, mode=0o755), None),
        (member("d/e", tarfile.DIRTYPE, mode=0o755), None), (member("d/e/f"), b"f"),
        (member("d/e/.wh."), b""), (member("d/e/.wh.."), b""), (member("d/e/.wh..."), b""))
    rootfs = pathlib.Path(store.rootfs(store.import_image(source, "dots").digest))
    assert sorted(str(path.relative_to(rootfs)) for path in rootfs.rglob("*")) == [
        "d", "d/e", "d/e/f"]


def test_a_sparse_file_of_a_directory_stays_sparse(store: ImageStore, tmp_path: pathlib.Path
                                                  ) -> None:
    """Only its data is copied: a 50 GB hole took minutes and 51 GB written."""
    source = tmp_path / "sparse"
    source.mkdir()
    with open(source / "holes", "wb") as handle:
        handle.write(b"head")
        handle.seek(512 << 20)  # 512 MiB further on
        handle.write(b"tail")
    (source / "dense").write_bytes(b"0123456789" * 1000)
    rootfs = pathlib.Path(store.rootfs(store.import_image(str(source), "sparse").digest))
    copied = rootfs / "holes"
    assert copied.stat().st_size == (512 << 20) + 4
    assert copied.stat().st_blocks * 512 < 1 << 20  # a few blocks, not 512 MiB
    with open(copied, "rb") as handle:
        assert handle.read(4) == b"head"
        handle.seek(512 << 20)
        assert handle.read() == b"tail"
        handle.seek(1 << 20)
        assert handle.read(16) == bytes(16)
    assert (rootfs / "dense").read_bytes() == b"0123456789" * 1000


def test_an_rmi_does_not_wait_for_an_import_of_other_content(store: ImageStore,
                                                            tmp_path: pathlib.Path) -> None:
    """The store's lock covers an import's move into place and its row, not its staging: an
    rmi waited behind every import in progress, however long its unpacking."""
    store.import_image(tarball(tmp_path / "small.tar", (member("f"), b"s")), "small")
    staging = threading.Event()
    release = threading.Event()
    real = image_module._untar

    def slow_untar(*arguments: Any) -> None:
        staging.set()
        release.wait(30)
        real(*arguments)

    image_module._untar = slow_untar  # type: ignore[assignment]
    importer = threading.Thread(target=store.import_image, args=(
        tarball(tmp_path / "big.tar", (member("g"), b"big")), "big"))
    try:
        importer.start()
        assert staging.wait(30)
        removal = store.remove("small")  # returns while the import still stages
        assert removal.untagged == ["small:latest"]
        assert importer.is_alive()
    finally:
        release.set()
        importer.join(30)
        image_module._untar = real  # type: ignore[assignment]
    assert [image.reference for image in store.list_images()] == ["big:latest"]


def test_a_removal_recovery_finishes_collects_a_deleted_images_files(
        engine: Engine, tmp_path: pathlib.Path) -> None:
    """The store reclaims at open, before recovery: a removal that recovery finishes must
    collect the files itself, or they stayed until the next restart."""
    from engine.recovery import Recovery
    from engine.removal import begin_removal
    from engine.service import API

    images = engine.images
    assert images is not None
    record = images.import_image(tarball(tmp_path / "c.tar", (member("f"), b"c")), "gone")
    user = engine.create(ContainerConfig(image="gone", command=("true",)))
    assert images.remove("gone", force=True).deleted == record.digest
    begin_removal(engine.saga, engine.inspect(user.id), volumes=False, journal_context=API)
    # The daemon dies here; the next one's store opens while the container is "removing".
    root = tmp_path / "root"
    reopened, _ = open_engine(root, runtime=FakeRuntime(root / "fake" / "runtime"),
                              host=FakeHost(str(root), root / "fake" / "host"), backend="fake",
                              recover=False)
    reopened.images = ImageStore(root, reopened.saga.db)
    assert pathlib.Path(reopened.images.rootfs(record.digest)).is_dir()  # still "used"
    report = Recovery(reopened).run()
    assert report.removals == [user.id]
    assert not pathlib.Path(reopened.images.rootfs(record.digest)).exists()
