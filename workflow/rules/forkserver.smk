from infoflow import forkserver

# A local run starts its model jobs by forking one warm Python process (infoflow.forkserver)
# instead of importing torch and transformers in each; `forkserver: false` turns it off. Jobs
# started before the server listens, and jobs on cluster nodes, start their own Python. The
# server writes a line per job to .snakemake/forkserver.log.
FORKSERVER = []


onstart:
    if config["forkserver"] and workflow.local_exec and not workflow.remote_exec:
        FORKSERVER.append(forkserver.start(".snakemake/forkserver.log"))


onsuccess:
    for process in FORKSERVER:
        forkserver.stop(process)


onerror:
    for process in FORKSERVER:
        forkserver.stop(process)
