# SPDX-License-Identifier: BSD-3-Clause
"""DataLink resolution: from images' publisher DIDs to their SODA cutout services.

The TAP result carries a DataLink service descriptor (an ``adhoc:service``
RESOURCE with ``standardID`` DataLink, DataLink 1.1 §4); :func:`descriptor`
keeps it with the column it takes IDs from.  :func:`soda_services` asks that
service for the DataLink documents of many images in batched POST requests
and takes from each its SODA sync service descriptor (``#cutout``,
``standardID`` ``ivo://ivoa.net/std/SODA#sync-1.0``).  No SODA or DataLink
path is written here: everything comes from the server's documents.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from casuvo.client.errors import ArchiveError

if TYPE_CHECKING:
    import pyvo
    import requests
    from astropy.io.votable.tree import Resource

__all__ = ["DATALINK_BATCH", "SodaService", "descriptor", "id_param_ref", "soda_services"]

_DATALINK_IVOID = "ivo://ivoa.net/std/datalink#links-1.0"
_SODA_SYNC_IVOID = "ivo://ivoa.net/std/soda#sync-1.0"
#: IDs per DataLink request (DataLink 1.1 allows many; keep POST bodies modest).
DATALINK_BATCH = 200
#: Links asked for per image in one DataLink request (a tile has ~12; DaCHS crops at MAXREC).
_DATALINK_MAXREC_PER_ID = 100

#: (DataLink record, SODA service descriptor) of one image, or why it has none.
SodaService = tuple[Any, Any] | str


def id_param_ref(resource: Resource) -> str | None:
    """The FIELD a DataLink service descriptor takes its ``ID`` input from (DataLink 1.1 §4)."""
    for group in resource.groups:
        if group.name != "inputParams":
            continue
        for param in group.entries:
            if param.name == "ID" and getattr(param, "ref", None):
                return str(param.ref)
    return None


def descriptor(result: pyvo.dal.DALResults) -> tuple[Resource, str] | None:
    """A TAP result's DataLink service descriptor and the column it takes IDs from."""
    from pyvo.dal import DALServiceError

    try:
        resource = result.get_adhocservice_by_ivoid(_DATALINK_IVOID)
    except DALServiceError:
        return None
    ref = id_param_ref(resource)
    if ref is None:
        return None
    names = {f.ID: f.name for f in result.votable.get_first_table().fields}
    return resource, names.get(ref, ref)


def soda_services(resource: Resource, ref: str, ids: Sequence[str],
                  session: requests.Session | None) -> dict[str, SodaService]:
    """{publisher DID: (record, SODA descriptor) or why not} from the DataLink documents.

    ``ref`` is the ``ID`` parameter's name; the documents are asked for in
    batches of :data:`DATALINK_BATCH`.  A DID the service answered with an
    error maps to the error's text; a DID it did not answer for is absent.
    """
    import requests
    from astropy.io.votable.exceptions import VOWarning
    from pyvo.dal import DALAccessError
    from pyvo.dal.adhoc import DatalinkQuery

    soda: dict[str, SodaService] = {}
    remaining = list(dict.fromkeys(ids))
    while remaining:
        batch, remaining = remaining[:DATALINK_BATCH], remaining[DATALINK_BATCH:]
        query = DatalinkQuery.from_resource([{ref: i} for i in batch], resource,
                                            session=session)
        # DaCHS crops a DataLink document at the service's default MAXREC (100 links,
        # about 15 images' worth), dropping the #cutout rows that come last.
        query["MAXREC"] = str(_DATALINK_MAXREC_PER_ID * len(batch))
        with warnings.catch_warnings():
            # DaCHS's service descriptors give array PARAMs an empty value,
            # which astropy flags (E02); nothing a user of the client can act on.
            warnings.simplefilter("ignore", VOWarning)
            try:
                links = query.execute(post=True)
            except (DALAccessError, requests.RequestException) as exc:
                raise ArchiveError(
                    f"DataLink request to {query.baseurl} failed: {exc}") from exc
        for record in links:
            rid = record.id
            if rid in soda and not isinstance(soda[rid], str):
                continue
            if record.error_message:
                soda.setdefault(rid, f"DataLink: {record.error_message}")
                continue
            if not record.service_def:
                continue
            svc = links.get_adhocservice_by_id(record.service_def)
            std = {str(p.value).lower() for p in svc.params if p.name == "standardID"}
            if _SODA_SYNC_IVOID in std:
                soda[rid] = (record, svc)
    return soda
